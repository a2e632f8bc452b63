"""End-to-end tests of ``measure`` with the real IREE toolchain, valgrind and ptxas.

A tiny matmul + relu keeps callgrind fast; the whole file runs in well under
a minute.
"""

import shutil

import pytest

pytest.importorskip("iree.compiler")
pytest.importorskip("iree.runtime")

from mlircost_classic.collect._measure import measure  # noqa: E402
from mlircost_classic.collect._measure_gpu import nvidia_gpu_name  # noqa: E402
from mlircost_classic.collect._toolchain import find_tools  # noqa: E402

pytestmark = pytest.mark.collect

MATMUL_RELU = """
func.func @main(%a: tensor<8x16xf32>, %b: tensor<16x8xf32>) -> tensor<8x8xf32> {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<8x8xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<8x8xf32>) -> tensor<8x8xf32>
  %mm = linalg.matmul ins(%a, %b : tensor<8x16xf32>, tensor<16x8xf32>)
                      outs(%acc : tensor<8x8xf32>) -> tensor<8x8xf32>
  %relu = linalg.generic {
      indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
      iterator_types = ["parallel", "parallel"]}
      ins(%mm : tensor<8x8xf32>) outs(%init : tensor<8x8xf32>) {
  ^bb0(%x: f32, %out: f32):
    %y = arith.maximumf %x, %zero : f32
    linalg.yield %y : f32
  } -> tensor<8x8xf32>
  return %relu : tensor<8x8xf32>
}
"""

STATIC = ["cpu_x86_64_v3", "nvidia_sm80", "nvidia_sm90", "amd_gfx942"]


def _require_tools():
    tools = find_tools()
    for name in ("iree_compile", "iree_run_module", "iree_dump_module", "valgrind"):
        if getattr(tools, name) is None:
            pytest.skip(f"{name} is not installed")
    if tools.ptxas is None:
        pytest.skip("ptxas is not installed")


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    _require_tools()
    return measure(MATMUL_RELU, STATIC, workdir=tmp_path_factory.mktemp("measure-a"))


def test_every_static_target_is_measured(measured):
    assert measured.failures == []
    targets = measured.targets
    instructions = targets["cpu_x86_64_v3.instructions"]
    assert isinstance(instructions, int) and instructions > 0
    assert targets["cpu_x86_64_v3.dispatches"] >= 1
    assert targets["cpu_x86_64_v3.code_bytes"] > 0
    for hw in ("nvidia_sm80", "nvidia_sm90"):
        assert targets[f"{hw}.registers"] > 0
        assert targets[f"{hw}.spill_bytes"] >= 0
        assert 0 < targets[f"{hw}.occupancy"] <= 1
    assert targets["amd_gfx942.vgprs"] > 0
    assert targets["amd_gfx942.sgprs"] > 0
    assert 0 < targets["amd_gfx942.occupancy"] <= 1


def test_kernels_carry_sources_and_metrics(measured):
    assert len(measured.kernels) == measured.targets["cpu_x86_64_v3.dispatches"]
    total = 0
    for kernel in measured.kernels:
        assert "hal.executable" in kernel.source
        assert f"@{kernel.name}" in kernel.source
        assert kernel.targets["nvidia_sm80.registers"] > 0
        assert kernel.targets["amd_gfx942.vgprs"] > 0
        assert kernel.targets["cpu_x86_64_v3.code_bytes"] > 0
        total += kernel.targets["cpu_x86_64_v3.instructions"]
    # The runtime's own work is outside every kernel.
    assert 0 < total < measured.targets["cpu_x86_64_v3.instructions"]
    registers = [k.targets["nvidia_sm80.registers"] for k in measured.kernels]
    assert measured.targets["nvidia_sm80.registers"] == max(registers)


def test_provenance_records_tools_flags_and_seconds(measured):
    prov = measured.provenance
    assert "IREE compiler version" in prov["tools"]["iree-compile"]
    assert prov["host_cpu"]
    assert "--iree-cuda-target=sm_80" in prov["commands"]["compile:cuda"]
    assert "--iree-llvmcpu-target-cpu=x86-64-v3" in prov["commands"]["compile:llvm-cpu"]
    assert "--toggle-collect=iree_vm_invoke" in prov["commands"]["callgrind"]
    assert prov["seconds"]["compile:llvm-cpu"] > 0
    assert "nvidia_sm80.occupancy" in prov["derived"]


def test_deterministic_targets_repeat_in_another_folder(measured, tmp_path):
    again = measure(
        MATMUL_RELU, STATIC, workdir=tmp_path / "a much longer folder name" / "b"
    )
    assert again.failures == []
    assert again.targets == measured.targets
    assert {k.name: k.targets for k in again.kernels} == {
        k.name: k.targets for k in measured.kernels
    }


def test_latency_is_measured_on_the_host(tmp_path):
    _require_tools()
    result = measure(MATMUL_RELU, ["cpu_host"], workdir=tmp_path, repeats=2)
    assert result.failures == []
    assert result.targets["cpu_host.latency_us"] > 0
    assert result.targets["cpu_host.latency_us_spread"] >= 0
    assert len(result.provenance["cpu_host"]["samples_us"]) == 2


def test_host_timing_reuses_the_module_compiled_for_the_static_targets(tmp_path):
    _require_tools()
    first = measure(MATMUL_RELU, ["cpu_x86_64_v3"], workdir=tmp_path)
    vmfb = (tmp_path / "llvm-cpu" / "module.vmfb").read_bytes()
    timed = measure(
        MATMUL_RELU, ["cpu_host"], workdir=tmp_path, repeats=2, reuse_compiles=True
    )
    assert timed.failures == [] and timed.targets["cpu_host.latency_us"] > 0
    # The same module, not compiled again: the compile stage only read a folder.
    assert (tmp_path / "llvm-cpu" / "module.vmfb").read_bytes() == vmfb
    assert (
        timed.provenance["seconds"]["compile:llvm-cpu"]
        < 0.5 * (first.provenance["seconds"]["compile:llvm-cpu"])
    )
    assert (
        timed.provenance["commands"]["compile:llvm-cpu"]
        == first.provenance["commands"]["compile:llvm-cpu"]
    )


def test_compile_reuse_needs_the_same_text_and_flags(tmp_path):
    _require_tools()
    from mlircost_classic.collect._compile import compile_mlir
    from mlircost_classic.collect._toolchain import ToolError

    source = tmp_path / "input.mlir"
    source.write_text(MATMUL_RELU)
    out = tmp_path / "llvm-cpu"
    first = compile_mlir(source, "llvm-cpu", out)
    again = compile_mlir(source, "llvm-cpu", out, reuse=True)
    assert not first.reused and again.reused
    assert again.vmfb == first.vmfb and again.sources == first.sources
    assert again.binaries == first.binaries and again.flags == first.flags
    assert not compile_mlir(source, "llvm-cpu", out).reused  # reuse is opt-in
    other_flags = compile_mlir(source, "llvm-cpu", out, input_level="tosa", reuse=True)
    assert not other_flags.reused
    source.write_text(MATMUL_RELU.replace("maximumf", "minimumf"))
    assert not compile_mlir(source, "llvm-cpu", out, reuse=True).reused
    # A failed compile leaves nothing to reuse, even for the text before it.
    source.write_text("func.func @main( {")
    with pytest.raises(ToolError):
        compile_mlir(source, "llvm-cpu", out, reuse=True)
    source.write_text(MATMUL_RELU.replace("maximumf", "minimumf"))
    assert not compile_mlir(source, "llvm-cpu", out, reuse=True).reused


def code(binary):
    """The bytes a binary's labels come from: an ELF's executable sections
    and function sizes, any other binary whole."""
    from mlircost_classic.collect._measure_cpu import (
        _elf_sections,
        elf_function_sizes,
    )

    data = binary.read_bytes()
    if binary.suffix != ".so":
        return data
    sections = _elf_sections(data)
    text = [data[at : at + size] for _, flags, at, size, _, _ in sections if flags & 4]
    return text, elf_function_sizes(binary)


@pytest.mark.parametrize(
    "backend, phase", [("llvm-cpu", "flow"), ("cuda", "executable-targets")]
)
def test_a_split_compile_dumps_the_bytes_of_one_and_keeps_its_phase(
    tmp_path, backend, phase
):
    _require_tools()
    from mlircost_classic.collect._compile import compile_mlir, compile_phase

    source = tmp_path / "input.mlir"
    source.write_text(MATMUL_RELU)
    one = compile_mlir(source, backend, tmp_path / "one")
    split = compile_mlir(source, backend, tmp_path / "split", split_at=phase)
    assert one.kept == {} and set(split.kept) == {phase}
    assert split.sources == one.sources and split.flags == one.flags
    assert [b.name for b in split.binaries] == [b.name for b in one.binaries]
    # What the labels are read from is the same: the PTX byte for byte, the
    # ELF's code and function sizes (its debug line table may differ: the
    # intermediate carries no source locations).
    assert [code(b) for b in split.binaries] == [code(b) for b in one.binaries]
    # The kept IR is the phase's, weights and all: the same program a compile
    # up to that phase prints (that one elides nothing this small).
    alone, _, _ = compile_phase(source, backend, phase, tmp_path / "alone")
    assert split.kept[phase].read_text() == alone
    again = compile_mlir(
        source, backend, tmp_path / "split", split_at=phase, reuse=True
    )
    assert again.reused and again.kept == split.kept
    assert not compile_mlir(source, backend, tmp_path / "split", reuse=True).reused


TORCH_RELU = """
func.func @main(%x: !torch.vtensor<[4,16],f32>, %i: !torch.vtensor<[4],si64>)
    -> !torch.vtensor<[4,16],f32> {
  %0 = torch.aten.relu %x : !torch.vtensor<[4,16],f32> -> !torch.vtensor<[4,16],f32>
  return %0 : !torch.vtensor<[4,16],f32>
}
"""


def test_torch_level_input_is_compiled_and_run(tmp_path):
    _require_tools()
    result = measure(
        TORCH_RELU, ["cpu_x86_64_v3"], input_level="torch", workdir=tmp_path
    )
    assert result.failures == []
    assert result.targets["cpu_x86_64_v3.instructions"] > 0
    assert result.provenance["inputs"]["types"] == [
        "tensor<4x16xf32>",
        "tensor<4xsi64>",
    ]


def test_a_program_that_fails_to_compile_is_recorded(tmp_path):
    _require_tools()
    broken = MATMUL_RELU.replace("tensor<16x8xf32>)\n", "tensor<16x9xf32>)\n", 1)
    result = measure(broken, ["cpu_x86_64_v3", "nvidia_sm80"], workdir=tmp_path)
    stages = [stage for stage, _ in result.failures]
    assert stages == ["compile:cpu_x86_64_v3", "compile:nvidia_sm80"]
    assert all("iree-compile exited with status" in m for _, m in result.failures)
    assert all("error" in m for _, m in result.failures)
    assert result.targets == {} and result.kernels == []


def test_a_stage_timeout_is_recorded_not_raised(tmp_path):
    _require_tools()
    result = measure(
        MATMUL_RELU, ["amd_gfx942"], workdir=tmp_path, timeouts={"compile": 0.01}
    )
    [(stage, message)] = result.failures
    assert stage == "compile:amd_gfx942"
    assert message.startswith("iree-compile timed out after 0.01 s")
    assert result.targets == {}


@pytest.mark.skipif(
    nvidia_gpu_name() is not None or shutil.which("nvidia-smi") is not None,
    reason="this host has an NVIDIA GPU",
)
def test_gpu_latency_is_absent_without_a_gpu(tmp_path):
    result = measure(MATMUL_RELU, ["nvidia_h100"], workdir=tmp_path)
    assert "nvidia_h100.latency_us" not in result.targets
    assert [s for s, _ in result.failures] == ["benchmark:nvidia_h100"]


def test_programmer_errors_raise():
    with pytest.raises(ValueError, match="unknown hardware"):
        measure(MATMUL_RELU, ["tpu_v5"])
    with pytest.raises(ValueError, match="unknown input level"):
        measure(MATMUL_RELU, ["cpu_x86_64_v3"], input_level="onnx")
    with pytest.raises(ValueError, match="unknown timeout keys"):
        measure(MATMUL_RELU, ["cpu_x86_64_v3"], timeouts={"compil": 1})
    with pytest.raises(TypeError):
        measure(MATMUL_RELU, "cpu_x86_64_v3")


# --- labels that mean one thing (issue 18) -------------------------------------

TWO_LAYERS = """
func.func @main(%x: tensor<16x32xf32>, %w1: tensor<32x32xf32>, %w2: tensor<32x32xf32>)
    -> tensor<16x32xf32> {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<16x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<16x32xf32>) -> tensor<16x32xf32>
  %h = linalg.matmul ins(%x, %w1 : tensor<16x32xf32>, tensor<32x32xf32>)
                     outs(%acc : tensor<16x32xf32>) -> tensor<16x32xf32>
  %y = linalg.matmul ins(%h, %w2 : tensor<16x32xf32>, tensor<32x32xf32>)
                     outs(%acc : tensor<16x32xf32>) -> tensor<16x32xf32>
  return %y : tensor<16x32xf32>
}
"""

ONE_LAYER = """
func.func @main(%x: tensor<16x32xf32>, %w1: tensor<32x32xf32>) -> tensor<16x32xf32> {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<16x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<16x32xf32>) -> tensor<16x32xf32>
  %h = linalg.matmul ins(%x, %w1 : tensor<16x32xf32>, tensor<32x32xf32>)
                     outs(%acc : tensor<16x32xf32>) -> tensor<16x32xf32>
  return %h : tensor<16x32xf32>
}
"""


def test_kernel_instructions_are_per_call(tmp_path):
    """A matmul dispatched twice carries one call's instructions, not two."""
    _require_tools()
    twice = measure(TWO_LAYERS, ["cpu_x86_64_v3"], workdir=tmp_path / "two")
    once = measure(ONE_LAYER, ["cpu_x86_64_v3"], workdir=tmp_path / "one")
    assert twice.failures == [] and once.failures == []
    (repeated,) = twice.kernels  # IREE keeps one executable for both matmuls
    (single,) = once.kernels
    assert repeated.calls == 2 and single.calls == 1
    a = repeated.targets["cpu_x86_64_v3.instructions"]
    b = single.targets["cpu_x86_64_v3.instructions"]
    assert abs(a - b) <= 0.01 * b
    assert twice.targets["cpu_x86_64_v3.instructions"] > 2 * b


MATMUL_F16 = """
func.func @main(%a: tensor<256x512xf16>, %b: tensor<512x256xf16>) -> tensor<256x256xf32> {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<256x256xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<256x256xf32>)
      -> tensor<256x256xf32>
  %mm = linalg.matmul ins(%a, %b : tensor<256x512xf16>, tensor<512x256xf16>)
                      outs(%acc : tensor<256x256xf32>) -> tensor<256x256xf32>
  return %mm : tensor<256x256xf32>
}
"""


def test_cuda_dynamic_shared_memory_is_counted(tmp_path):
    """IREE's f16 matmuls stage operands in dynamic shared memory, which
    ptxas -v does not report; the label adds the size IREE launches with."""
    _require_tools()
    result = measure(MATMUL_F16, ["nvidia_sm80", "nvidia_sm90"], workdir=tmp_path)
    assert result.failures == []
    (kernel,) = result.kernels
    for hw in ("nvidia_sm80", "nvidia_sm90"):
        shared = kernel.targets[f"{hw}.shared_bytes"]
        assert shared > 0
        assert result.targets[f"{hw}.shared_bytes"] == shared
    assert "launch:cuda" in result.provenance["commands"]


def _source(number: int, body: str, variant: str) -> str:
    return (
        f"hal.executable public @main_dispatch_{number} {{\n"
        f'  hal.executable.variant public @{variant} target(<"{variant}">) {{\n'
        f"    hal.executable.export public @main_dispatch_{number}_{body}\n"
        f"    func.func @main_dispatch_{number}_{body}() {{ {body} }}\n"
    )


def test_backends_are_paired_by_content_not_by_name(tmp_path):
    """Where CUDA numbers its dispatches differently, a name stands for
    another computation: labels follow the dispatch body."""
    from mlircost_classic.collect._measure import _Session

    session = _Session(tmp_path, {})
    cpu = {f"main_dispatch_{i}_{b}": _source(i, b, "cpu") for i, b in enumerate("ab")}
    # CUDA: dispatch 0 is b (a came out fused elsewhere), 1 is c, unknown to CPU
    cuda = {
        "main_dispatch_0_b": _source(0, "b", "cuda"),
        "main_dispatch_1_c": _source(1, "c", "cuda"),
    }
    session.add_sources("llvm-cpu", cpu)
    session.add_sources("cuda", cuda)
    session.aggregate(
        "nvidia_sm80",
        "cuda",
        {"main_dispatch_0_b": {"registers": 40}, "main_dispatch_1_c": {"registers": 7}},
    )
    by_name = {k.name: k for k in session.kernels.values()}
    assert set(by_name) == {
        "main_dispatch_0_a",
        "main_dispatch_1_b",
        "main_dispatch_1_c",
    }
    assert "nvidia_sm80.registers" not in by_name["main_dispatch_0_a"].targets
    assert by_name["main_dispatch_1_b"].targets["nvidia_sm80.registers"] == 40
    # a dispatch only CUDA makes is a kernel of its own, with CUDA's text
    assert by_name["main_dispatch_1_c"].targets["nvidia_sm80.registers"] == 7
    assert '"cuda"' in by_name["main_dispatch_1_c"].source
    assert session.targets["nvidia_sm80.registers"] == 40


def test_tool_spellings_of_export_names_find_their_kernel(tmp_path):
    """ptxas writes ``main$async`` as ``main_async``; AMD metadata keeps quotes."""
    from mlircost_classic.collect._measure import _Session

    session = _Session(tmp_path, {})
    text = _source(0, "a", "cuda").replace("main_dispatch", "main$async_dispatch")
    session.add_sources("cuda", {"main$async_dispatch_0_a": text})
    assert session.kernel("cuda", "main_async_dispatch_0_a") is not None
    assert session.kernel("cuda", "'main$async_dispatch_0_a'") is not None


@pytest.mark.parametrize("name", ["compile_mlir", "compile_phase"])
def test_compiles_reject_unknown_backend_and_level_before_running(tmp_path, name):
    from mlircost_classic.collect import _compile

    function = getattr(_compile, name)
    extra = ("flow",) if name == "compile_phase" else ()
    source = tmp_path / "m.mlir"
    source.write_text("module {}\n")
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        function(source, "tpu", *extra, tmp_path / "a")
    with pytest.raises(ValueError, match="unknown input level 'onnx'"):
        function(source, "llvm-cpu", *extra, tmp_path / "b", input_level="onnx")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
