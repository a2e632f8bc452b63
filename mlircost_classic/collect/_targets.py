"""The hardware the collector measures, and the names of its targets.

A target is ``<hardware>.<metric>``; the metric name carries its unit. The
table follows the "Targets" section of DESIGN.md. ``deterministic`` metrics
must reproduce exactly when a record is re-collected; ``needs`` names the
resource (a quiet host, a GPU) a worker must have to measure the hardware.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["HARDWARE", "HardwareSpec", "target_names"]


@dataclass(frozen=True)
class HardwareSpec:
    """One measured hardware.

    Attributes
    ----------
    name : str
        Prefix of its target names.
    metrics : tuple of str
        Module-level metrics.
    kernel_metrics : tuple of str
        Metrics also measured per kernel (IREE dispatch).
    deterministic : frozenset of str
        Metrics that a re-collection must reproduce exactly.
    needs : str or None
        Resource needed to measure it (``"cpu_timing"``: a host where no
        other timing runs at once; ``"cuda"``: an NVIDIA GPU), or ``None``.
    description : str
        How it is measured.
    """

    name: str
    metrics: tuple[str, ...]
    kernel_metrics: tuple[str, ...]
    deterministic: frozenset[str]
    needs: str | None
    description: str


_GPU_NVIDIA = ("registers", "spill_bytes", "stack_bytes", "shared_bytes", "occupancy")
_GPU_AMD = ("vgprs", "sgprs", "spills", "lds_bytes", "scratch_bytes", "occupancy")


def _nvidia(name: str, arch: str) -> HardwareSpec:
    return HardwareSpec(
        name=name,
        metrics=_GPU_NVIDIA,
        kernel_metrics=_GPU_NVIDIA,
        deterministic=frozenset(_GPU_NVIDIA),
        needs=None,
        description=(
            "IREE CUDA target sm_80 -> PTX -> `ptxas -v --gpu-name "
            f"{arch}`: registers per thread (module: max over kernels), spill "
            "stores + loads in bytes (module: sum), stack frame and static "
            "shared memory in bytes (module: max); occupancy is derived from "
            "them (module: min), see _measure_gpu.nvidia_occupancy"
        ),
    )


HARDWARE: dict[str, HardwareSpec] = {
    spec.name: spec
    for spec in (
        HardwareSpec(
            name="cpu_x86_64_v3",
            metrics=("instructions", "code_bytes", "dispatches"),
            kernel_metrics=("instructions", "code_bytes"),
            deterministic=frozenset({"instructions", "code_bytes", "dispatches"}),
            needs=None,
            description=(
                "IREE llvm-cpu for x86-64-v3 (AVX2): instructions executed per "
                "invocation (valgrind callgrind, inclusive count of the entry "
                "function's invocation, local-sync device), executable code bytes "
                "in the module, number of dispatch functions"
            ),
        ),
        HardwareSpec(
            name="cpu_host",
            metrics=("latency_us", "latency_us_spread"),
            kernel_metrics=(),
            deterministic=frozenset(),
            needs="cpu_timing",
            description=(
                "iree-benchmark-module on this host (local-sync device, x86-64-v3 "
                "code): median wall time per invocation over repetitions, and "
                "the interquartile range relative to the median; the host CPU "
                "model is in the provenance"
            ),
        ),
        _nvidia("nvidia_sm80", "sm_80"),
        _nvidia("nvidia_sm90", "sm_90"),
        HardwareSpec(
            name="amd_gfx942",
            metrics=_GPU_AMD,
            kernel_metrics=_GPU_AMD,
            deterministic=frozenset(_GPU_AMD),
            needs=None,
            description=(
                "IREE ROCm target gfx942, AMDGPU code object metadata of the "
                "assembly: VGPRs and SGPRs (module: max), spilled VGPRs + SGPRs "
                "(module: sum), LDS and scratch bytes (module: max); occupancy "
                "is derived (module: min), see _measure_gpu.amd_occupancy"
            ),
        ),
        HardwareSpec(
            name="nvidia_h100",
            metrics=("latency_us", "latency_us_spread"),
            kernel_metrics=(),
            deterministic=frozenset(),
            needs="cuda",
            description=(
                "iree-benchmark-module --device=cuda on an NVIDIA H100 (sm_80 "
                "PTX, JIT-compiled by the driver); measured only on a host with "
                "that GPU, never estimated"
            ),
        ),
    )
}


def target_names(hardware: Iterable[str] | None = None) -> list[str]:
    """Module-level target names of some hardware.

    Parameters
    ----------
    hardware : iterable of str, optional
        Names from :data:`HARDWARE`; all of them by default.

    Returns
    -------
    list of str
        ``"<hardware>.<metric>"`` in table order.

    Examples
    --------
    >>> target_names(["cpu_x86_64_v3"])
    ['cpu_x86_64_v3.instructions', 'cpu_x86_64_v3.code_bytes', 'cpu_x86_64_v3.dispatches']
    """
    if isinstance(hardware, str):
        raise TypeError("hardware must be an iterable of names, not a single str")
    names = list(HARDWARE) if hardware is None else list(hardware)
    unknown = [n for n in names if n not in HARDWARE]
    if unknown:
        raise ValueError(f"unknown hardware {unknown}; choose from {sorted(HARDWARE)}")
    return [f"{n}.{m}" for n in names for m in HARDWARE[n].metrics]
