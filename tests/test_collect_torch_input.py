"""A program imported from torch gets its GPU kernel labels.

IREE names its dispatches ``main$async_dispatch_N_...``; ptxas reports them as
``main_async_dispatch_N_...`` and the AMDGPU metadata quotes them, so matching
by name alone left every GPU kernel label out.
"""

import pytest

pytest.importorskip("iree.compiler")

from mlircost_classic.collect._measure import measure  # noqa: E402
from mlircost_classic.collect._toolchain import find_tools  # noqa: E402

pytestmark = pytest.mark.collect

TORCH_MM_RELU = """
func.func @main(%a: !torch.vtensor<[4,8],f32>, %b: !torch.vtensor<[8,16],f32>)
    -> !torch.vtensor<[4,16],f32> {
  %0 = torch.aten.mm %a, %b : !torch.vtensor<[4,8],f32>, !torch.vtensor<[8,16],f32>
      -> !torch.vtensor<[4,16],f32>
  %1 = torch.aten.relu %0 : !torch.vtensor<[4,16],f32> -> !torch.vtensor<[4,16],f32>
  return %1 : !torch.vtensor<[4,16],f32>
}
"""


def test_a_torch_program_gets_gpu_kernel_labels(tmp_path):
    tools = find_tools()
    if tools.iree_compile is None or tools.ptxas is None:
        pytest.skip("iree-compile or ptxas is not installed")
    hardware = ["nvidia_sm80", "nvidia_sm90", "amd_gfx942"]
    result = measure(TORCH_MM_RELU, hardware, input_level="torch", workdir=tmp_path)
    assert result.failures == []
    assert result.kernels
    for kernel in result.kernels:
        assert "$async_dispatch" in kernel.name
        for target in ("nvidia_sm80.registers", "nvidia_sm90.registers"):
            assert target in kernel.targets, (kernel.name, target)
        assert "amd_gfx942.vgprs" in kernel.targets, kernel.name
    for hw in hardware:
        assert f"{hw}.occupancy" in result.targets
