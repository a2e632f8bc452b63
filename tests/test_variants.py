"""Variants: reading and editing codegen configs, candidate generation, variant
records, and (with the real IREE toolchain) configuring and measuring."""

import copy
import math

import numpy as np
import pytest

from mlircost_classic.datasets import (
    append_records,
    load_dataset,
    pack,
    validate_record,
)
from mlircost_classic.mlir._iree_config import (
    mma_shape,
    read_config,
    write_config,
)

# The shape of IREE 3.13's dumps (--iree-hal-dump-executable-configurations-to),
# cut to the lines the reader looks at.
GPU_THREAD = """hal.executable public @main_dispatch_0 {
  builtin.module {
    func.func @main_dispatch_0_matmul_512x256x1024_f32() attributes {translation_info = #iree_codegen.translation_info<pipeline = #iree_gpu.pipeline<TileAndFuse> workgroup_size = [32, 8, 1] subgroup_size = 32, {gpu_pipeline_options = #iree_gpu.pipeline_options<no_reduce_shared_memory_bank_conflicts = true, use_igemm_convolution = false>}>} {
      %7 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%3, %4 : tensor<512x1024xf32>, tensor<1024x256xf32>) outs(%6 : tensor<512x256xf32>) attrs =  {lowering_config = #iree_gpu.lowering_config<{reduction = [0, 0, 32], thread = [1, 16, 0], workgroup = [32, 128, 1]}>} {
      } -> tensor<512x256xf32>
      return
    }
  }
}
"""
GPU_MMA = """func.func @f() attributes {translation_info = #iree_codegen.translation_info<pipeline = #iree_gpu.pipeline<TileAndFuse> workgroup_size = [256, 1, 1] subgroup_size = 64, {gpu_pipeline_options = #iree_gpu.pipeline_options<prefetch_num_stages = 2>}>} {
  %8 = linalg.generic {iterator_types = ["parallel", "parallel", "reduction"]} ins(%3, %4 : tensor<512x1024xf32>, tensor<1024x256xf32>) outs(%6 : tensor<512x256xf32>) attrs =  {lowering_config = #iree_gpu.lowering_config<{mma_kind = #iree_gpu.mma_layout<MFMA_F32_16x16x4_F32>, padding = [64, 128, 64], promote_operands = [0, 1], reduction = [0, 0, 16], subgroup = [2, 4, 0], workgroup = [64, 128, 0]}>} {
  } -> tensor<512x256xf32>
}
"""
CPU = """func.func @f() attributes {translation_info = #iree_codegen.translation_info<pipeline = #iree_cpu.pipeline<DoubleTilingExpert>, {enable_loop_peeling}>} {
  %6 = linalg.fill {lowering_config = #iree_cpu.lowering_config<cache_parallel = [64, 64], vector_common_parallel = [8, 8]>} ins(%cst : f32) outs(%5 : tensor<512x256xf32>) -> tensor<512x256xf32>
  %7 = linalg.matmul {lowering_config = #iree_cpu.lowering_config<cache_parallel = [64, 64, 0], distribution = [64, 64, 0], vector_common_parallel = [8, 8, 0], vector_reduction = [0, 0, 8]>} ins(%3, %4 : tensor<512x1024xf32>, tensor<1024x256xf32>) outs(%6 : tensor<512x256xf32>) -> tensor<512x256xf32>
}
"""


def test_read_config_gpu_thread_tiles():
    c = read_config(GPU_THREAD)
    assert c.backend == "gpu"
    assert c.pipeline == "TileAndFuse"
    assert c.levels == {
        "reduction": [0, 0, 32],
        "thread": [1, 16, 0],
        "workgroup": [32, 128, 1],
    }
    assert c.workgroup_size == [32, 8, 1]
    assert c.subgroup_size == 32
    assert c.mma_kind == ""


def test_read_config_mma_and_flags():
    c = read_config(GPU_MMA)
    assert c.mma_kind == "MFMA_F32_16x16x4_F32"
    assert mma_shape(c.mma_kind) == (16, 16, 4)
    assert "promote_operands = [0, 1]" in c.flags
    assert "promote_operands" not in c.levels
    assert c.levels["subgroup"] == [2, 4, 0]


def test_read_config_cpu_picks_the_root_op():
    c = read_config(CPU)
    assert c.backend == "cpu"
    assert c.pipeline == "DoubleTilingExpert"
    # The matmul (it has the distribution level), not the fill before it.
    assert c.levels["distribution"] == [64, 64, 0]
    assert c.levels["vector_reduction"] == [0, 0, 8]
    assert c.workgroup_size == []


def test_read_config_refuses_unconfigured_text():
    with pytest.raises(ValueError, match="lowering_config"):
        read_config("func.func @f() { return }")


@pytest.mark.parametrize("text", [GPU_THREAD, GPU_MMA, CPU])
def test_write_config_round_trips_and_changes_only_the_numbers(text):
    config = read_config(text)
    assert write_config(text, config) == text
    edited = copy.deepcopy(config)
    name = next(iter(edited.levels))
    edited.levels[name] = [2 * v + 1 for v in edited.levels[name]]
    if edited.workgroup_size:
        edited.workgroup_size = [512, 1, 1]
    new = write_config(text, edited)
    assert read_config(new) == edited
    assert len(new.splitlines()) == len(text.splitlines())


def test_write_config_keeps_other_ops():
    edited = read_config(CPU)
    edited.levels["vector_common_parallel"] = [4, 16, 0]
    new = write_config(CPU, edited)
    assert "vector_common_parallel = [8, 8]>" in new  # the fill is untouched


def test_write_config_refuses_a_level_of_another_length():
    edited = read_config(GPU_THREAD)
    edited.levels["thread"] = [1, 16]
    with pytest.raises(ValueError, match="3 loops"):
        write_config(GPU_THREAD, edited)


# -- candidates -------------------------------------------------------------

from mlircost_classic.collect._variants import candidate_configs  # noqa: E402


def test_candidates_of_thread_tiles_are_valid_and_distinct():
    default = read_config(GPU_THREAD)
    out = candidate_configs(default, 12, seed=1)
    assert out[0] is default
    assert len(out) == 12
    assert len({str(c.to_dict()) for c in out}) == 12
    for c in out[1:]:
        wg, th = c.levels["workgroup"], c.levels["thread"]
        assert all(w % t == 0 for w, t in zip(wg, th, strict=True) if t)
        threads = math.prod(w // t for w, t in zip(wg, th, strict=True) if t)
        assert c.workgroup_size == [threads, 1, 1]
        assert threads % 32 == 0 and 32 <= threads <= 1024
        assert c.levels["reduction"][:2] == [0, 0]


def test_candidates_of_mma_configs_keep_subgroups_aligned():
    default = read_config(GPU_MMA)
    out = candidate_configs(default, 10, seed=0)
    assert len(out) == 10
    for c in out:
        wg, sg = c.levels["workgroup"], c.levels["subgroup"]
        subgroups = (wg[0] // (sg[0] * 16)) * (wg[1] // (sg[1] * 16))
        assert wg[0] % (sg[0] * 16) == 0 and wg[1] % (sg[1] * 16) == 0
        assert c.workgroup_size == [subgroups * 64, 1, 1]
        # Padding follows the tiles: workgroup on M, N and reduction x K of 4.
        assert c.levels["padding"] == [wg[0], wg[1], c.levels["reduction"][2] * 4]


def test_candidates_of_cpu_configs_nest_their_levels():
    out = candidate_configs(read_config(CPU), 10, seed=0)
    assert len(out) == 10
    for c in out:
        for outer, inner in (
            ("distribution", "cache_parallel"),
            ("cache_parallel", "vector_common_parallel"),
        ):
            pairs = zip(c.levels[outer], c.levels[inner], strict=True)
            assert all(o % i == 0 for o, i in pairs if o and i)


def test_candidates_are_seeded():
    default = read_config(GPU_THREAD)
    a = candidate_configs(default, 6, seed=3)
    assert a == candidate_configs(default, 6, seed=3)
    assert a != candidate_configs(default, 6, seed=4)
    assert candidate_configs(default, 1) == [default]
    with pytest.raises(ValueError, match="k must be"):
        candidate_configs(default, 0)


# A VectorDistribute row reduction as IREE 3.13 configures it for gfx942.
GPU_VECTOR = """func.func @f() attributes {translation_info = #iree_codegen.translation_info<pipeline = #iree_gpu.pipeline<VectorDistribute> workgroup_size = [128, 1, 1] subgroup_size = 64, {gpu_pipeline_options = #iree_gpu.pipeline_options<no_reduce_shared_memory_bank_conflicts = false, use_igemm_convolution = false>}>} {
  %7 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>], iterator_types = ["parallel", "reduction"]} ins(%4 : tensor<32x8192xf32>) outs(%6 : tensor<32xf32>) attrs =  {lowering_config = #iree_gpu.lowering_config<{lane_basis = [[1, 64], [0, 1]], partial_reduction = [0, 512], subgroup_basis = [[1, 2], [0, 1]], thread = [0, 4], workgroup = [1, 0]}>} {
  } -> tensor<32xf32>
}
"""
# A four-loop convolution-like MMA config (batch, channels, rows, columns).
GPU_MMA_4 = GPU_MMA.replace(
    "padding = [64, 128, 64], promote_operands = [0, 1], reduction = [0, 0, 16], "
    "subgroup = [2, 4, 0], workgroup = [64, 128, 0]",
    "padding = [2, 16, 2, 16, 16], promote_operands = [0, 1], "
    "reduction = [0, 0, 0, 0, 4], subgroup = [2, 1, 1, 1, 0], "
    "workgroup = [2, 16, 2, 16, 0]",
).replace("workgroup_size = [256, 1, 1]", "workgroup_size = [128, 1, 1]")


def _gfx942_vgpr_budget(threads):
    """VGPRs a lane may hold: a CU's four SIMDs split 512 among their waves."""
    return 512 // math.ceil(threads / 64 / 4)


def test_gfx942_candidates_pass_the_wave_register_budget():
    from mlircost_classic.collect._variants import spill_prone_configs

    default = read_config(GPU_MMA)
    ordinary = candidate_configs(default, 8, seed=0)
    wide = spill_prone_configs(default, 7, seed=0, exclude=ordinary)
    assert len(wide) == 7
    keys = {str(c.to_dict()) for c in ordinary + wide}
    assert len(keys) == 15  # none repeats the compiler's or the ordinary ones

    def accumulators(c):  # f32 VGPRs a lane holds for its 16x16 MFMA tiles
        return math.prod(v for v in c.levels["subgroup"] if v) * 16 * 16 // 64

    for c in wide:
        wg, sg = c.levels["workgroup"], c.levels["subgroup"]
        assert wg[0] % (sg[0] * 16) == 0 and wg[1] % (sg[1] * 16) == 0
        subgroups = (wg[0] // (sg[0] * 16)) * (wg[1] // (sg[1] * 16))
        threads = subgroups * 64
        assert c.workgroup_size == [threads, 1, 1]
        budget = _gfx942_vgpr_budget(threads)
        assert 256 <= threads <= 1024
        assert budget / 2 <= accumulators(c) <= 2 * budget
        assert c.levels["padding"] == [wg[0], wg[1], c.levels["reduction"][2] * 4]
        # At most the compiler's reduction tile: the workgroup tiles grow,
        # and with them the operands in shared memory.
        assert c.levels["reduction"][2] <= 16

    def past(candidates):
        return [
            c
            for c in candidates
            if accumulators(c) >= _gfx942_vgpr_budget(math.prod(c.workgroup_size))
        ]

    # The accumulators alone fill the budget of more of them than of the
    # ordinary candidates (1 of 8 here).
    assert len(past(wide)) >= 3 > len(past(ordinary))
    assert max(math.prod(c.workgroup_size) for c in wide) == 1024


def test_gfx942_candidates_of_four_loop_mma_configs_keep_the_subgroup_counts():
    from mlircost_classic.collect._variants import spill_prone_configs

    default = read_config(GPU_MMA_4)
    wide = spill_prone_configs(default, 7, seed=0)
    assert wide
    for c in wide:
        wg, sg = c.levels["workgroup"], c.levels["subgroup"]
        # Whichever loops carry the intrinsic, each loop's subgroup count
        # (workgroup / subgroup tile) grows by the same factor as the threads.
        growth = [
            (w // s) // (w0 // s0)
            for w, s, w0, s0 in zip(
                wg,
                sg,
                default.levels["workgroup"],
                default.levels["subgroup"],
                strict=False,
            )
            if s
        ]
        assert c.workgroup_size[0] == 128 * math.prod(growth) >= 256
        assert all(w % s == 0 for w, s in zip(wg, sg, strict=True) if s)
        assert c.levels["padding"][:4] == wg[:4]


def test_gfx942_candidates_of_vector_reductions_widen_threads_and_subgroups():
    from mlircost_classic.collect._variants import spill_prone_configs

    default = read_config(GPU_VECTOR)
    wide = spill_prone_configs(default, 7, seed=0)
    assert len(wide) == 7
    for c in wide:
        text = write_config(GPU_VECTOR, c)
        assert read_config(text) == c  # the new subgroup_basis is written
        (basis,) = [f for f in c.flags if f.startswith("subgroup_basis")]
        subgroups = int(basis.split("[[1, ")[1].split("]")[0])
        threads = subgroups * 64
        assert c.workgroup_size == [threads, 1, 1] and 256 <= threads <= 1024
        vector = c.levels["thread"][1]
        partial = c.levels["partial_reduction"][1]
        # A pass of the partial reduction is whole vectors of every thread,
        # at most 64 elements a thread.
        assert partial % (vector * threads) == 0
        assert vector * (partial // (vector * threads)) <= 64
        assert c.levels["workgroup"] == [1, 0]
    assert max(c.levels["thread"][1] for c in wide) >= 16
    assert max(c.levels["partial_reduction"][1] for c in wide) > 4 * 512


def test_only_gfx942_configs_of_gpu_pipelines_get_spill_prone_candidates():
    from mlircost_classic.collect._variants import spill_prone_configs

    assert spill_prone_configs(read_config(CPU), 7) == []
    thread = read_config(GPU_THREAD.replace("subgroup_size = 32", "subgroup_size = 64"))
    wide = spill_prone_configs(thread, 7, seed=0)
    assert len(wide) == 7
    for c in wide:
        wg, th = c.levels["workgroup"], c.levels["thread"]
        threads = math.prod(w // t for w, t in zip(wg, th, strict=True) if t)
        assert c.workgroup_size == [threads, 1, 1] and threads % 64 == 0
        # The thread tile's elements: half to twice the wave's VGPR budget.
        budget = _gfx942_vgpr_budget(threads)
        assert budget / 2 <= th[0] * th[1] <= 2 * budget


def test_gfx942_groups_add_spill_prone_candidates_and_skip_known_ones(
    tmp_path, monkeypatch
):
    from mlircost_classic.collect import _variants
    from mlircost_classic.datasets import iter_records
    from mlircost_classic.datasets._schema import variant_record_id

    texts = {"cuda": GPU_THREAD, "rocm": GPU_MMA}
    compiled = []

    def configure(source, backend, workdir, *, timeout):
        return texts[backend]

    def measure_candidate(text, backend, workdir, *, timeouts, kernel):
        compiled.append((backend, text))
        hw = _variants.VARIANT_BACKENDS[backend]
        return _variants.CandidateResult(
            {f"{h}.compiles": 0.0 for h in hw}, [("compile", "not run")], {}
        )

    monkeypatch.setattr(_variants, "configure", configure)
    monkeypatch.setattr(_variants, "measure_candidate", measure_candidate)
    monkeypatch.setattr(_variants, "host_cpu", lambda: "test")
    monkeypatch.setattr(_variants, "toolchain_versions", lambda: {})
    kernel = {
        "id": "d" * 64,
        "family": "bmm",
        "params": {},
        "name": "d0",
        "ir": {"dispatch": "unused"},
    }
    known = {variant_record_id(GPU_MMA, "rocm", ["amd_gfx942"])}
    counts = _variants.collect_variants(
        [kernel], 8, tmp_path, backends=("cuda", "rocm"), known=known
    )
    records = list(iter_records(tmp_path / "variants.jsonl"))
    cuda = [r["config"] for r in records if r["backend"] == "cuda"]
    rocm = [r["config"] for r in records if r["backend"] == "rocm"]
    # CUDA groups are the ordinary candidates, as before.
    assert cuda == [c.to_dict() for c in candidate_configs(read_config(GPU_THREAD), 8)]
    # The gfx942 group: the compiler's choice is known (not compiled again),
    # then the 7 ordinary candidates and 7 past the register budget.
    ordinary = candidate_configs(read_config(GPU_MMA), 8)
    assert rocm[:7] == [c.to_dict() for c in ordinary[1:]]
    assert len(rocm) == 14 and counts["candidates"] == 8 + 14
    assert not any(r["is_default"] for r in records if r["backend"] == "rocm")
    assert all(w["workgroup_size"][0] >= 256 for w in rocm[7:])
    assert len(compiled) == 22


# -- records ----------------------------------------------------------------


def _variant_record(text, is_default, registers, dispatch="a" * 64, **kernel_fields):
    from mlircost_classic.collect._variants import CandidateResult, _record

    kernel = {"id": dispatch, "family": "bmm", "params": {"m": 1}, "name": "d0"}
    kernel.update(kernel_fields)
    targets = {"nvidia_sm80.compiles": 1.0, "nvidia_sm80.registers": registers}
    result = CandidateResult(targets, [], {"compile:cuda": 0.5})
    return _record(
        kernel,
        "cuda",
        read_config(text),
        text,
        is_default,
        result,
        {"host_cpu": "test"},
        0,
    )


def test_variant_records_validate_and_load_by_group(tmp_path):
    other = GPU_THREAD.replace("thread = [1, 16, 0]", "thread = [2, 16, 0]")
    records = [
        _variant_record(GPU_THREAD, True, 50),
        _variant_record(other, False, 64),
        _variant_record(GPU_THREAD.replace("512", "640"), True, 40, dispatch="b" * 64),
    ]
    for rec in records:
        assert validate_record(rec) == []
    tampered = dict(records[1], dispatch_id="xyz")
    assert "dispatch_id: not a record id" in validate_record(tampered)
    append_records(tmp_path / "variants.jsonl", records)
    ds = load_dataset("variants", hardware="nvidia_sm80", data_home=tmp_path)
    assert list(ds.groups) == ["a" * 64, "a" * 64, "b" * 64]
    assert list(ds.is_default) == [True, False, True]
    assert ds.target_names == ["nvidia_sm80.compiles", "nvidia_sm80.registers"]
    np.testing.assert_array_equal(ds.target[:, 1], [50, 64, 40])
    assert ds.configs[1]["levels"]["thread"] == [2, 16, 0]
    packed = pack(tmp_path, tmp_path / "home")
    assert [p.name for p in packed.new_shards] == ["variants-00000.jsonl.xz"]
    shards = load_dataset(
        "variants", hardware="nvidia_sm80", data_home=tmp_path / "home"
    )
    assert list(shards.ids) == list(ds.ids)
    with pytest.raises(ValueError, match="unknown target 'amd_gfx942'"):
        load_dataset("variants", hardware="amd_gfx942", data_home=tmp_path)


def test_variant_records_carry_their_dispatch_source(tmp_path):
    network = _variant_record(
        GPU_THREAD,
        True,
        50,
        dispatch="c" * 64,
        family="hf_mistral",
        source="transformers",
    )
    assert network["source"] == "transformers" and validate_record(network) == []
    # a kernel without the field is from the families, and so is its candidate
    assert _variant_record(GPU_THREAD, True, 50)["source"] == "families"
    append_records(tmp_path / "variants.jsonl", [network])
    ds = load_dataset("variants", source="transformers", data_home=tmp_path)
    assert list(ds.groups) == ["c" * 64]


def test_hardware_selects_variants_only(tmp_path):
    with pytest.raises(ValueError, match="hardware= selects variants"):
        load_dataset("kernels", hardware="nvidia_sm80", data_home=tmp_path)


# -- with the real toolchain --------------------------------------------------

MATMUL_F16 = """
func.func @main(%a: tensor<64x128xf16>, %b: tensor<128x64xf16>) -> tensor<64x64xf32> {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<64x64xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<64x64xf32>) -> tensor<64x64xf32>
  %mm = linalg.matmul ins(%a, %b : tensor<64x128xf16>, tensor<128x64xf16>)
                      outs(%acc : tensor<64x64xf32>) -> tensor<64x64xf32>
  return %mm : tensor<64x64xf32>
}
"""


@pytest.fixture(scope="module")
def dispatch(tmp_path_factory):
    """The program's one dispatch, as a kernel record holds it, and its labels."""
    pytest.importorskip("iree.compiler")
    from mlircost_classic.collect._measure import measure
    from mlircost_classic.collect._toolchain import find_tools

    tools = find_tools()
    for name in ("iree_compile", "iree_run_module", "valgrind", "ptxas"):
        if getattr(tools, name) is None:
            pytest.skip(f"{name} is not installed")
    result = measure(
        MATMUL_F16,
        ["cpu_x86_64_v3", "nvidia_sm80", "amd_gfx942"],
        workdir=tmp_path_factory.mktemp("program"),
    )
    assert result.failures == []
    (kernel,) = result.kernels
    return kernel


@pytest.mark.collect
def test_gpu_default_candidate_reproduces_the_program_compile(dispatch, tmp_path):
    from mlircost_classic.collect._variants import configure, measure_candidate

    for backend, metric in (
        ("cuda", "nvidia_sm80.registers"),
        ("rocm", "amd_gfx942.vgprs"),
    ):
        text = configure(dispatch.source, backend, tmp_path / backend)
        config = read_config(text)
        assert config.mma_kind  # an f16 matmul gets matrix cores on both
        result = measure_candidate(text, backend, tmp_path / f"{backend}-0")
        assert result.failures == []
        assert result.targets[metric] == dispatch.targets[metric]
        if backend == "cuda":  # static + dynamic shared memory, as the program's
            shared = "nvidia_sm80.shared_bytes"
            assert result.targets[shared] == dispatch.targets[shared] > 0
        assert result.targets[metric.split(".")[0] + ".compiles"] == 1


@pytest.mark.collect
def test_a_rejected_candidate_is_a_result_with_the_compiler_message(dispatch, tmp_path):
    from mlircost_classic.collect._variants import configure, measure_candidate

    text = configure(dispatch.source, "cuda", tmp_path / "configure")
    config = read_config(text)
    # Three subgroups cannot split a workgroup tile of 64 rows.
    config.levels["subgroup"] = [3, *config.levels["subgroup"][1:]]
    result = measure_candidate(write_config(text, config), "cuda", tmp_path / "bad")
    assert result.targets == {"nvidia_sm80.compiles": 0.0, "nvidia_sm90.compiles": 0.0}
    stages = [stage for stage, _ in result.failures]
    assert stages == ["compile:nvidia_sm80", "compile:nvidia_sm90"]
    assert "iree-compile exited with status 1" in result.failures[0][1]


# Two dispatches: a matmul with its bias and a row sum of its result.
TWO_DISPATCHES = """
func.func @main(%a: tensor<32x64xf32>, %b: tensor<64x128xf32>, %bias: tensor<128xf32>)
    -> (tensor<32x128xf32>, tensor<32xf32>) {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<32x128xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<32x128xf32>) -> tensor<32x128xf32>
  %mm = linalg.matmul ins(%a, %b : tensor<32x64xf32>, tensor<64x128xf32>)
                      outs(%acc : tensor<32x128xf32>) -> tensor<32x128xf32>
  %biased = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>,
      affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>],
      iterator_types = ["parallel", "parallel"]}
      ins(%mm, %bias : tensor<32x128xf32>, tensor<128xf32>) outs(%init : tensor<32x128xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<32x128xf32>
  %rows = tensor.empty() : tensor<32xf32>
  %racc = linalg.fill ins(%zero : f32) outs(%rows : tensor<32xf32>) -> tensor<32xf32>
  %sum = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>,
      affine_map<(i, j) -> (i)>], iterator_types = ["parallel", "reduction"]}
      ins(%biased : tensor<32x128xf32>) outs(%racc : tensor<32xf32>) {
  ^bb0(%x: f32, %o: f32):
    %e = math.exp %x : f32
    %s = arith.addf %e, %o : f32
    linalg.yield %s : f32
  } -> tensor<32xf32>
  return %biased, %sum : tensor<32x128xf32>, tensor<32xf32>
}
"""


@pytest.mark.collect
def test_cpu_candidates_alone_give_the_program_labels_of_each_dispatch(tmp_path):
    pytest.importorskip("iree.compiler")
    from mlircost_classic.collect._measure import measure
    from mlircost_classic.collect._toolchain import find_tools
    from mlircost_classic.collect._variants import (
        candidate_configs,
        configure,
        measure_candidate,
    )

    tools = find_tools()
    for name in ("iree_compile", "iree_benchmark_executable", "valgrind"):
        if getattr(tools, name) is None:
            pytest.skip(f"{name} is not installed")
    program = measure(TWO_DISPATCHES, ["cpu_x86_64_v3"], workdir=tmp_path / "program")
    assert program.failures == []
    assert len(program.kernels) == 2
    for j, kernel in enumerate(program.kernels):
        text = configure(kernel.source, "llvm-cpu", tmp_path / f"configure-{j}")
        default, other = candidate_configs(read_config(text), 2, seed=0)
        results = [
            measure_candidate(
                write_config(text, candidate),
                "llvm-cpu",
                tmp_path / f"c{j}-{i}",
                kernel=kernel.name,
            )
            for i, candidate in enumerate((default, other))
        ]
        assert [r.failures for r in results] == [[], []]
        # The compiler's choice measured alone is the program's per-call label.
        for metric in ("instructions", "code_bytes"):
            target = f"cpu_x86_64_v3.{metric}"
            assert results[0].targets[target] == kernel.targets[target] > 0
        assert (
            results[1].targets["cpu_x86_64_v3.instructions"]
            != (results[0].targets["cpu_x86_64_v3.instructions"])
        )
        assert "./iree-benchmark-executable" in results[0].commands["callgrind"]


SUBSPANS = """
        %c0 = arith.constant 0 : index
        %c256 = arith.constant 256 : index
        %0 = hal.interface.constant.load layout(<constants = 3, bindings = [#b, #b]>) ordinal(0) : i32
        %1 = hal.interface.constant.load layout(<constants = 3, bindings = [#b, #b]>) ordinal(1) : i32
        %2 = hal.interface.constant.load layout(<constants = 3, bindings = [#b, #b]>) ordinal(2) : i32
        %3 = arith.index_castui %0 : i32 to index
        %4 = arith.index_castui %1 : i32 to index
        %6:2 = util.assume.int
            %3[<umin = 1024, umax = 1024, udiv = 1024>, <umin = 64, umax = 64, udiv = 64>],
            %4<umin = 4096, umax = 4096, udiv = 4096>
          : index, index
        %7 = hal.interface.binding.subspan layout(<constants = 3, bindings = [#b, #b]>) binding(0) alignment(64) offset(%6#0) flags("ReadOnly|Indirect") : !iree_tensor_ext.dispatch.tensor<readonly:tensor<4x8xf16>>
        %8 = hal.interface.binding.subspan layout(<constants = 3, bindings = [#b, #b]>) binding(0) alignment(64) offset(%c256) flags("ReadOnly|Indirect") : !iree_tensor_ext.dispatch.tensor<readonly:tensor<16xi8>>
        %9 = hal.interface.binding.subspan layout(<constants = 3, bindings = [#b, #b]>) binding(1) alignment(64) offset(%6#1) flags(Indirect) : memref<2x3xf32, strided<[8, 1], offset: ?>, #hal.descriptor_type<storage_buffer>>
"""


def test_dispatch_buffers_reach_each_subspan_at_its_offset():
    from mlircost_classic.collect._variants import dispatch_buffers

    bindings, constants = dispatch_buffers(SUBSPANS)
    # binding 0: 1024 + 4*8*2 bytes (beyond 256 + 16); binding 1: 4096 + (8 + 3) * 4.
    assert bindings == [1024 + 64, 4096 + 44]
    # The first dispatch site's values; no assumption about constant 2.
    assert constants == [1024, 4096, 0]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("offset(%c256)", "offset(%2)"), "offset %2 of binding 0 is not known"),
        (("tensor<16xi8>", "tensor<?xi8>"), "dynamic shape"),
        (("tensor<16xi8>", "tensor<16x!foo.t>"), "element type"),
    ],
)
def test_dispatch_buffers_refuse_what_they_cannot_size(edit, message):
    from mlircost_classic.collect._toolchain import ToolError
    from mlircost_classic.collect._variants import dispatch_buffers

    with pytest.raises(ToolError, match=message):
        dispatch_buffers(SUBSPANS.replace(*edit))


TRANSLATED = """
    hal.executable.export public @other ordinal(0) layout(#l) count(%arg0: !hal.device) -> (index, index, index) {
      %c9 = arith.constant 9 : index
      hal.return %c9, %c9, %c9 : index, index, index
    }
    hal.executable.export public @main_dispatch_0 ordinal(1) layout(#l) count(%arg0: !hal.device, %arg1: index) -> (index, index, index) {
      %c8 = arith.constant 8 : index
      %c1 = arith.constant 1 : index
      hal.return %c8, %c1, %c1 : index, index, index
    } <workgroup_size = [1 : index, 1 : index, 1 : index]>
"""


def test_workgroup_count_is_the_exports_constant_count():
    from mlircost_classic.collect._toolchain import ToolError
    from mlircost_classic.collect._variants import workgroup_count

    assert workgroup_count(TRANSLATED, "main_dispatch_0") == [8, 1, 1]
    assert workgroup_count(TRANSLATED, "other") == [9, 9, 9]
    with pytest.raises(ToolError, match="not constant"):
        workgroup_count(TRANSLATED.replace("%c8, %c1", "%arg1, %c1"), "main_dispatch_0")
    with pytest.raises(ToolError, match="no workgroup count region"):
        workgroup_count(TRANSLATED, "missing")


def test_gpu_latency_of_candidates_amends_variant_records(tmp_path):
    from mlircost_classic.collect import import_gpu_results
    from tests.test_gpu_batch import _result

    records = [_variant_record(GPU_THREAD, True, 50)]
    append_records(tmp_path / "variants.jsonl", records)
    results = tmp_path / "results.jsonl"
    append_records(results, [_result(records[0]["id"], gpu="NVIDIA H200")])
    report = import_gpu_results(results, tmp_path, kind="variants")
    assert report["written"] == 1 and report["unknown"] == []
    ds = load_dataset("variants", hardware="nvidia_sm80", data_home=tmp_path)
    assert "nvidia_sm80.registers" in ds.target_names
    ds = load_dataset("variants", targets="nvidia_h200.latency_us", data_home=tmp_path)
    assert ds.target[0, 0] == 182.5
    with pytest.raises(ValueError, match="kind must be one of"):
        import_gpu_results(results, tmp_path, kind="kernels")


@pytest.mark.collect
def test_export_puts_each_candidate_back_into_its_program(dispatch, tmp_path):
    from mlircost_classic.collect._variants import (
        candidate_configs,
        configure,
        export_variant_gpu_batch,
    )

    home, run = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    run.mkdir()
    program = {"id": "c" * 64, "ir": {"linalg": MATMUL_F16}, "compiled_level": "linalg"}
    kernel = {
        "id": "d" * 64,
        "module_id": program["id"],
        "ir": {"dispatch": dispatch.source},
        "family": "bmm",
        "params": {},
        "name": dispatch.name,
    }
    append_records(home / "modules.jsonl", [{**program, "kernels": [kernel["id"]]}])
    append_records(home / "kernels.jsonl", [kernel])
    text = configure(dispatch.source, "cuda", tmp_path / "configure")
    records = []
    for i, candidate in enumerate(candidate_configs(read_config(text), 2)):
        rec = _variant_record(write_config(text, candidate), i == 0, 1, kernel["id"])
        records.append(rec)
    append_records(run / "variants.jsonl", records)
    manifest = export_variant_gpu_batch(run, tmp_path / "batch", data_home=home)
    assert [e["id"] for e in manifest["modules"]] == [r["id"] for r in records]
    assert manifest["skipped"] == []
    first, second = (
        (tmp_path / "batch" / e["vmfb"]).read_bytes() for e in manifest["modules"]
    )
    assert first != second  # each module holds its own candidate
    assert manifest["modules"][0]["inputs"][0].startswith(
        f"64x128xf16=@inputs/{'c' * 64}/"
    )
    # A candidate timed already (here by an amendment of the run) is not again.
    append_records(
        run / "amendments.jsonl",
        [
            {
                "kind": "amendment",
                "record_kind": "variant",
                "id": records[0]["id"],
                "targets": {"nvidia_h200.latency_us": 50.0},
                "provenance": {"tool": "test"},
            }
        ],
    )
    again = export_variant_gpu_batch(run, tmp_path / "batch2", data_home=home)
    assert [e["id"] for e in again["modules"]] == [records[1]["id"]]
    # A group over the byte budget is left out after its first compile.
    small = export_variant_gpu_batch(
        run, tmp_path / "batch3", data_home=home, max_bytes=1
    )
    assert small["modules"] == []
    assert small["skipped"] == [
        {"id": kernel["id"], "reason": "exceeds the batch budget"}
    ]
    assert not list((tmp_path / "batch3").rglob("*.vmfb"))
    assert not list((tmp_path / "batch3").rglob("*.bin"))
