"""GPU measurements: ptxas resource usage, AMDGPU metadata, derived occupancy.

NVIDIA
    IREE compiles the program to PTX for sm_80; ``ptxas -v --gpu-name ARCH``
    assembles that PTX for sm_80 and for sm_90 and reports per kernel: registers
    per thread, spill stores and loads (bytes), stack frame (bytes) and static
    shared memory (bytes). IREE's CUDA kernels take their shared memory as
    ``__dynamic_shared_memory__``, sized at launch, which ptxas cannot see:
    its size is the export's ``workgroup_local_memory`` after codegen
    (:func:`workgroup_memory`, read from ``iree-compile
    --compile-to=executable-targets``; IREE's CUDA target writes it into the
    executable as the launch's shared memory size). A kernel's
    ``shared_bytes`` is the static plus the dynamic size.
AMD
    IREE compiles for gfx942; the LLVM AMDGPU backend writes the code object
    metadata (``amdhsa.kernels``) into the assembly: VGPRs (the unified count,
    AGPRs included), SGPRs, VGPR and SGPR spill counts, LDS
    (``.group_segment_fixed_size``) and scratch (``.private_segment_fixed_size``)
    bytes per work-item.

Occupancy is *derived*, not measured: the fraction of the hardware's wave /
warp slots that resident blocks of the kernel can fill, limited by registers,
shared memory and block size, computed by :func:`nvidia_occupancy` and
:func:`amd_occupancy` from the measured usage, the kernel's threads per block
(PTX ``.reqntid`` / ``.maxntid``; AMDGPU ``.reqd_workgroup_size`` /
``.max_flat_workgroup_size``) and the architecture limits in
:data:`NVIDIA_LIMITS` and :data:`AMD_LIMITS`.
"""

from __future__ import annotations

import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ._compile import _EXPORT
from ._toolchain import ToolError, find_tools, run_tool

__all__ = [
    "AMD_LIMITS",
    "NVIDIA_LIMITS",
    "AmdLimits",
    "NvidiaLimits",
    "amd_occupancy",
    "amdgpu_metadata",
    "nvidia_gpu_name",
    "nvidia_occupancy",
    "ptx_threads_per_block",
    "ptxas_usage",
    "workgroup_memory",
]


@dataclass(frozen=True)
class NvidiaLimits:
    """Per-SM limits of an NVIDIA architecture (CUDA C++ Programming Guide,
    "Compute Capabilities" table; CUDA Occupancy Calculator)."""

    registers_per_sm: int
    register_unit: int  # registers are allocated per warp in units of this many
    max_warps_per_sm: int
    max_blocks_per_sm: int
    shared_per_sm: int  # bytes, the largest carve-out
    shared_unit: int  # bytes, allocation granularity
    shared_reserved_per_block: int  # bytes the driver reserves per block


NVIDIA_LIMITS = {
    # A100: 64 K registers, 64 warps, 32 blocks, 164 KB shared memory per SM.
    "sm_80": NvidiaLimits(65536, 256, 64, 32, 167936, 128, 1024),
    # H100: 64 K registers, 64 warps, 32 blocks, 228 KB shared memory per SM.
    "sm_90": NvidiaLimits(65536, 256, 64, 32, 233472, 128, 1024),
}


@dataclass(frozen=True)
class AmdLimits:
    """Limits of an AMD CDNA architecture (AMD CDNA3 ISA reference; LLVM
    AMDGPUUsage and ``AMDGPUBaseInfo``: ``getTotalNumVGPRs``,
    ``getVGPRAllocGranule``, ``getMaxWavesPerEU``)."""

    vgprs_per_simd: int  # per lane, VGPRs and AGPRs together
    vgpr_granule: int
    sgprs_per_simd: int
    sgpr_granule: int
    max_waves_per_simd: int
    simds_per_cu: int
    lds_per_cu: int  # bytes
    wave_size: int


AMD_LIMITS = {"gfx942": AmdLimits(512, 8, 800, 16, 8, 4, 65536, 64)}


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def nvidia_occupancy(
    arch: str, registers: int, shared_bytes: int, threads_per_block: int
) -> float:
    """Derived occupancy of an NVIDIA kernel: resident warps / max warps per SM.

    With ``w = ceil(threads / 32)`` warps per block, the resident blocks per SM
    are the minimum of ``max_blocks_per_sm``, ``floor(max_warps_per_sm / w)``,
    ``floor(registers_per_sm / (w * round_up(32 * registers, register_unit)))``
    and ``floor(shared_per_sm / round_up(shared + reserved, shared_unit))``;
    occupancy is ``blocks * w / max_warps_per_sm``.

    Parameters
    ----------
    arch : str
        Key of :data:`NVIDIA_LIMITS`.
    registers : int
        Registers per thread.
    shared_bytes : int
        Static shared memory per block.
    threads_per_block : int
        Threads per block.

    Returns
    -------
    float
        In [0, 1]; 0 if a block does not fit on an SM.
    """
    lim = NVIDIA_LIMITS[arch]
    warps = -(-threads_per_block // 32)
    per_warp = _round_up(32 * max(registers, 1), lim.register_unit)
    shared = _round_up(shared_bytes + lim.shared_reserved_per_block, lim.shared_unit)
    blocks = min(
        lim.max_blocks_per_sm,
        lim.max_warps_per_sm // warps,
        lim.registers_per_sm // (warps * per_warp),
        lim.shared_per_sm // shared,
    )
    return blocks * warps / lim.max_warps_per_sm


def amd_occupancy(
    arch: str, vgprs: int, sgprs: int, lds_bytes: int, threads_per_block: int
) -> float:
    """Derived occupancy of an AMD kernel: resident waves / max waves per SIMD.

    Waves per SIMD are the minimum of ``max_waves_per_simd``,
    ``floor(vgprs_per_simd / round_up(vgprs, vgpr_granule))``,
    ``floor(sgprs_per_simd / round_up(sgprs, sgpr_granule))`` and, when the
    kernel uses LDS, ``ceil(floor(lds_per_cu / lds) * ceil(threads /
    wave_size) / simds_per_cu)``; occupancy is that over ``max_waves_per_simd``.

    Parameters
    ----------
    arch : str
        Key of :data:`AMD_LIMITS`.
    vgprs, sgprs : int
        Registers per wave (VGPR count includes AGPRs).
    lds_bytes : int
        LDS per workgroup.
    threads_per_block : int
        Work-items per workgroup.

    Returns
    -------
    float
        In [0, 1].
    """
    lim = AMD_LIMITS[arch]
    waves = [
        lim.max_waves_per_simd,
        lim.vgprs_per_simd // _round_up(max(vgprs, 1), lim.vgpr_granule),
        lim.sgprs_per_simd // _round_up(max(sgprs, 1), lim.sgpr_granule),
    ]
    if lds_bytes > 0:
        groups = lim.lds_per_cu // lds_bytes
        wg_waves = -(-threads_per_block // lim.wave_size)
        # A resident workgroup puts its waves on the CU's SIMDs; even one wave
        # occupies a SIMD, so round up rather than down.
        waves.append(-(-(groups * wg_waves) // lim.simds_per_cu))
    return min(waves) / lim.max_waves_per_simd


def ptx_threads_per_block(ptx: str) -> dict[str, int]:
    """Kernel name -> threads per block, from ``.reqntid`` or ``.maxntid``."""
    threads = {}
    for chunk in re.split(r"\.entry\s+", ptx)[1:]:
        name = re.match(r"[\w$.]+", chunk)
        header = chunk.split("{", 1)[0]
        dims = re.search(r"\.(?:reqntid|maxntid)\s+([\d,\s]+)", header)
        if name and dims:
            values = [int(v) for v in re.findall(r"\d+", dims.group(1))]
            threads[name.group(0)] = math.prod(values)
    return threads


def workgroup_memory(targets_ir: str) -> dict[str, dict[str, int]]:
    r"""Export -> launch facts after codegen, from ``executable-targets`` IR.

    Parameters
    ----------
    targets_ir : str
        ``iree-compile --compile-to=executable-targets`` output.

    Returns
    -------
    dict
        Export name -> ``local_memory`` (``workgroup_local_memory`` bytes,
        0 when the export has none) and ``threads`` (the product of its
        ``workgroup_size``, when given).

    Examples
    --------
    >>> ir = (
    ...     "hal.executable.export public @k ordinal(0) layout(#l) {\n"
    ...     "  hal.return %c1 : index\n"
    ...     "} <workgroup_size = [128 : index, 2 : index, 1 : index], "
    ...     "subgroup_size = 32, workgroup_local_memory = 34304>"
    ... )
    >>> workgroup_memory(ir)
    {'k': {'local_memory': 34304, 'threads': 256}}
    """
    found: dict[str, dict[str, int]] = {}
    matches = list(_EXPORT.finditer(targets_ir))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(targets_ir)
        body = targets_ir[m.end() : end]
        body = body.split("builtin.module", 1)[0]
        facts = {"local_memory": 0}
        if local := re.search(r"workgroup_local_memory\s*=\s*(\d+)", body):
            facts["local_memory"] = int(local.group(1))
        if size := re.search(r"workgroup_size\s*=\s*\[([^\]]*)\]", body):
            facts["threads"] = math.prod(
                int(v) for v in re.findall(r"(\d+)\s*:\s*index", size.group(1))
            )
        found[m.group(1)] = facts
    return found


def ptxas_usage(
    ptx_path: str | Path, arch: str, *, workdir: str | Path, timeout: float = 120.0
) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Resource usage per kernel reported by ``ptxas -v``.

    Parameters
    ----------
    ptx_path : path
        PTX file.
    arch : str
        ``sm_80`` or ``sm_90``.
    workdir : path
        Where the cubin is written.
    timeout : float, default 120
        Seconds allowed.

    Returns
    -------
    usage : dict
        Kernel -> ``registers``, ``spill_bytes`` (stores + loads),
        ``stack_bytes``, ``shared_bytes``.
    args : list of str
        The ptxas command.

    Raises
    ------
    ToolError
        If ptxas fails or reports no kernel.
    """
    ptx_path = Path(ptx_path)
    cubin = Path(workdir) / f"{ptx_path.stem}.{arch}.cubin"
    args = [find_tools().require("ptxas"), "-v", "--gpu-name", arch]
    run = run_tool([*args, str(ptx_path), "-o", str(cubin)], timeout=timeout)
    usage: dict[str, dict[str, int]] = {}
    entry = properties_of = None
    for line in (run.stderr + "\n" + run.stdout).splitlines():
        if m := re.search(r"Compiling entry function '([^']+)'", line):
            entry = m.group(1)
            usage[entry] = {
                "registers": 0,
                "spill_bytes": 0,
                "stack_bytes": 0,
                "shared_bytes": 0,
            }
        elif m := re.search(r"Function properties for (\S+)", line):
            properties_of = m.group(1)
        elif "bytes stack frame" in line and properties_of == entry and entry:
            values = dict(
                (k, int(v))
                for v, k in re.findall(
                    r"(\d+) bytes (stack frame|spill stores|spill loads)", line
                )
            )
            usage[entry]["stack_bytes"] = values.get("stack frame", 0)
            usage[entry]["spill_bytes"] = values.get("spill stores", 0) + values.get(
                "spill loads", 0
            )
        elif (m := re.search(r"Used (\d+) registers", line)) and entry:
            usage[entry]["registers"] = int(m.group(1))
            smem = re.search(r"(\d+) bytes smem", line)
            usage[entry]["shared_bytes"] = int(smem.group(1)) if smem else 0
    if not usage:
        raise ToolError(f"ptxas reported no kernel for {arch}")
    return usage, [*args, "<kernel.ptx>"]


def amdgpu_metadata(asm: str) -> dict[str, dict[str, int]]:
    """Per-kernel AMDGPU code object metadata from an assembly listing.

    Returns
    -------
    dict
        Kernel ``.name`` -> its integer-valued keys without the dot
        (``vgpr_count``, ``sgpr_count``, ``vgpr_spill_count``,
        ``sgpr_spill_count``, ``group_segment_fixed_size``,
        ``private_segment_fixed_size``, ``max_flat_workgroup_size``, ...) and
        ``threads_per_block`` (from ``reqd_workgroup_size`` when given).

    Raises
    ------
    ToolError
        If the listing has no ``amdhsa.kernels`` metadata.
    """
    block = re.search(r"\.amdgpu_metadata\s*\n(.*?)\.end_amdgpu_metadata", asm, re.S)
    if not block or "amdhsa.kernels:" not in block.group(1):
        raise ToolError("the ROCm assembly has no amdhsa.kernels metadata")
    kernels, current, list_key = [], None, None
    for line in block.group(1).split("amdhsa.kernels:", 1)[1].splitlines():
        if line and not line.startswith(" "):
            break  # the next top-level key ends the kernel list
        if m := re.match(r"  - \.(\w+):\s*(.*)$", line):
            current = {}
            kernels.append(current)
        else:
            m = re.match(r"    \.(\w+):\s*(.*)$", line)
        if m and current is not None:
            key, value = m.group(1), m.group(2).strip()
            list_key = key if value == "" else None
            if list_key:
                current[key] = []
            else:
                current[key] = value
        elif list_key and (item := re.match(r"\s+- (\d+)\s*$", line)):
            current[list_key].append(int(item.group(1)))
    out = {}
    for kernel in kernels:
        values = {
            k: int(v) for k, v in kernel.items() if isinstance(v, str) and v.isdigit()
        }
        wg = kernel.get("reqd_workgroup_size")
        values["threads_per_block"] = (
            math.prod(wg) if wg else values.get("max_flat_workgroup_size", 0)
        )
        out[kernel.get("name", "")] = values
    return out


def nvidia_gpu_name(timeout: float = 30.0) -> str | None:
    """Name of the first NVIDIA GPU (``nvidia-smi``), or ``None`` without one."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        run = run_tool(
            [smi, "--query-gpu=name", "--format=csv,noheader"], timeout=timeout
        )
    except ToolError:
        return None
    names = run.stdout.strip().splitlines()
    return names[0].strip() if names else None
