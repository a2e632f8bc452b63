"""The target table: every hardware, its metrics and what is known about them.

A target is ``<hardware>.<metric>``; the metric name carries its unit. This
table is the one place that says, per target, its unit, its domain (bounds
that predictions are clipped to), how a module's value follows from its
kernels' (``sum``, ``max`` or ``min`` over IREE dispatches), whether a
re-collection must reproduce it exactly (deterministic) or it is timed, which
tool makes it and which measuring backend of :mod:`mlircost_classic.collect`
produces it. The collector, :func:`~mlircost_classic.datasets.load_dataset`,
the models, the command line and the reports all read it.

Adding a hardware target is adding one :class:`Hardware` entry to
:data:`HARDWARE` (and, if no existing backend measures it, the backend's code
in ``collect/``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ._shards import COST_KINDS

__all__ = [
    "HARDWARE",
    "TARGETS",
    "Hardware",
    "Metric",
    "Target",
    "clip_to_domain",
    "resolve_target",
    "select_targets",
    "target_names",
    "target_unit",
]

#: How a module's value follows from its kernels' values: ``calls`` sums each
#: kernel's (per-call) value times the times the module runs it, ``sum`` adds
#: one value per kernel, ``max`` / ``min`` over kernels, ``count`` counts the
#: kernels (a module-only metric).
AGGREGATIONS = ("calls", "sum", "max", "min", "count")
#: The aggregations of metrics that kernels have values of.
_PER_KERNEL = ("calls", "sum", "max", "min")


@dataclass(frozen=True)
class Metric:
    """One metric of a hardware.

    Attributes
    ----------
    name : str
        The part of a target name after the hardware (``instructions``).
    unit : str
        Unit, for people (``bytes / thread``).
    aggregate : {"calls", "sum", "max", "min", "count"} or None
        How the module's value follows from its kernels' values (see
        :data:`AGGREGATIONS`); None for a metric of whole modules only
        (timings).
    deterministic : bool
        True when a re-collection must reproduce the value exactly; False for
        timed metrics (latencies and their spread).
    lower, upper : float
        Domain of the value: predictions are clipped to it.
    """

    name: str
    unit: str
    aggregate: str | None = None
    deterministic: bool = True
    lower: float = 0.0
    upper: float = math.inf

    def __post_init__(self) -> None:
        if self.aggregate not in (*AGGREGATIONS, None):
            raise ValueError(
                f"aggregate of {self.name!r} must be one of {AGGREGATIONS} or None"
            )


@dataclass(frozen=True)
class Hardware:
    """One measured hardware: a row group of the target table.

    Attributes
    ----------
    name : str
        Prefix of its target names.
    measures : tuple of Metric
        Its module-level metrics, in table order.
    backend : str
        The measuring backend of ``collect/`` that makes its targets
        (a key of the collector's backend registry).
    compile_for : tuple of str
        IREE compilation targets the backend needs (``llvm-cpu``, ``cuda`` ...).
    options : mapping
        Settings passed to the backend (``{"gpu_name": "sm_90"}``).
    tool : str
        The tools that make the numbers.
    needs : str or None
        Resource a worker must have to measure it (``"cpu_timing"``: a host
        where no other timing runs at once; ``"cuda"``: an NVIDIA GPU), or None.
    description : str
        How it is measured.
    """

    name: str
    measures: tuple[Metric, ...]
    backend: str
    compile_for: tuple[str, ...]
    tool: str
    description: str
    needs: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def metrics(self) -> tuple[str, ...]:
        """Names of its module-level metrics."""
        return tuple(m.name for m in self.measures)

    @property
    def kernel_metrics(self) -> tuple[str, ...]:
        """Metrics also measured per kernel (IREE dispatch)."""
        return tuple(m.name for m in self.measures if m.aggregate in _PER_KERNEL)

    @property
    def deterministic(self) -> frozenset[str]:
        """Metrics that a re-collection must reproduce exactly."""
        return frozenset(m.name for m in self.measures if m.deterministic)


@dataclass(frozen=True)
class Target:
    """One row of the target table: a :class:`Metric` of a :class:`Hardware`.

    Attributes
    ----------
    name : str
        ``<hardware>.<metric>``.
    hardware : Hardware
    metric : Metric
    """

    name: str
    hardware: Hardware
    metric: Metric

    @property
    def unit(self) -> str:
        """Its unit, for people."""
        return self.metric.unit

    @property
    def bounds(self) -> tuple[float, float]:
        """``(lower, upper)``: the domain predictions are clipped to."""
        return self.metric.lower, self.metric.upper

    @property
    def aggregate(self) -> str | None:
        """How the module value follows from the kernels' (:data:`AGGREGATIONS`)."""
        return self.metric.aggregate

    @property
    def deterministic(self) -> bool:
        """Whether a re-collection must reproduce it exactly."""
        return self.metric.deterministic

    @property
    def tool(self) -> str:
        """The tools that make it."""
        return self.hardware.tool

    @property
    def backend(self) -> str:
        """The measuring backend of ``collect/`` that makes it."""
        return self.hardware.backend


def _latency_metrics() -> tuple[Metric, ...]:
    return (
        Metric("latency_us", "µs", deterministic=False),
        Metric("latency_us_spread", "IQR / median", deterministic=False),
    )


def _occupancy(unit: str) -> Metric:
    return Metric("occupancy", unit, "min", upper=1.0)


#: Shared memory one block may use (opt-in maximum), bytes: 163 KB on
#: compute capability 8.0, 227 KB on 9.0 (CUDA C++ Programming Guide,
#: "Technical Specifications per Compute Capability").
_NVIDIA_SHARED_PER_BLOCK = {"sm_80": 163 * 1024, "sm_90": 227 * 1024}


def _nvidia(name: str, arch: str) -> Hardware:
    return Hardware(
        name=name,
        measures=(
            # PTX gives a thread at most 255 registers.
            Metric("registers", "registers / thread", "max", upper=255.0),
            Metric("spill_bytes", "bytes", "sum"),
            Metric("stack_bytes", "bytes / thread", "max"),
            Metric(
                "shared_bytes",
                "bytes / block",
                "max",
                upper=float(_NVIDIA_SHARED_PER_BLOCK[arch]),
            ),
            _occupancy("fraction of max warps"),
        ),
        backend="ptxas",
        compile_for=("cuda",),
        options={"gpu_name": arch},
        tool=f"iree-compile (CUDA, sm_80 PTX) + ptxas -v --gpu-name {arch}",
        description=(
            "IREE CUDA target sm_80 -> PTX -> `ptxas -v --gpu-name "
            f"{arch}`: registers per thread (module: max over kernels), spill "
            "stores + loads in bytes (module: sum), stack frame and static "
            "shared memory in bytes (module: max); occupancy is derived from "
            "them (module: min), see _measure_gpu.nvidia_occupancy"
        ),
    )


#: The target table, by hardware name, in table order.
def _timed_nvidia(model: str) -> Hardware:
    """Latency on one NVIDIA GPU model, timed only on a host that has it."""
    return Hardware(
        name=f"nvidia_{model.lower()}",
        measures=_latency_metrics(),
        backend="latency",
        compile_for=("cuda",),
        options={"iree_backend": "cuda", "device": "cuda", "gpu_model": model},
        tool="iree-benchmark-module --device=cuda",
        needs="cuda",
        description=(
            f"iree-benchmark-module --device=cuda on an NVIDIA {model} (sm_80 "
            "PTX, JIT-compiled by the driver); measured only on a host with "
            "that GPU, never estimated"
        ),
    )


HARDWARE: dict[str, Hardware] = {
    hw.name: hw
    for hw in (
        Hardware(
            name="cpu_x86_64_v3",
            measures=(
                Metric("instructions", "instructions", "calls"),
                Metric("code_bytes", "bytes", "sum"),
                Metric("dispatches", "dispatches", "count"),
            ),
            backend="callgrind",
            compile_for=("llvm-cpu", "llvm-cpu-system"),
            tool="iree-compile (llvm-cpu, x86-64-v3) + valgrind callgrind",
            description=(
                "IREE llvm-cpu for x86-64-v3 (AVX2): instructions executed per "
                "invocation (valgrind callgrind, inclusive count of the entry "
                "function's invocation, local-sync device), executable code bytes "
                "in the module, number of dispatch functions"
            ),
        ),
        Hardware(
            name="cpu_host",
            measures=_latency_metrics(),
            backend="latency",
            compile_for=("llvm-cpu",),
            options={"iree_backend": "llvm-cpu", "device": "local-sync"},
            tool="iree-benchmark-module (local-sync)",
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
        Hardware(
            name="amd_gfx942",
            measures=(
                # gfx942: 512 VGPRs a lane with the AGPRs (unified register file).
                Metric("vgprs", "VGPRs", "max", upper=512.0),
                Metric("sgprs", "SGPRs", "max"),
                Metric("spills", "registers spilled", "sum"),
                # gfx942: 64 KiB of LDS a workgroup.
                Metric("lds_bytes", "bytes", "max", upper=65536.0),
                Metric("scratch_bytes", "bytes / lane", "max"),
                _occupancy("fraction of max waves"),
            ),
            backend="amdgpu_metadata",
            compile_for=("rocm",),
            options={"chip": "gfx942"},
            tool="iree-compile (ROCm, gfx942) code object metadata",
            description=(
                "IREE ROCm target gfx942, AMDGPU code object metadata of the "
                "assembly: VGPRs and SGPRs (module: max), spilled VGPRs + SGPRs "
                "(module: sum), LDS and scratch bytes (module: max); occupancy "
                "is derived (module: min), see _measure_gpu.amd_occupancy"
            ),
        ),
        _timed_nvidia("H100"),
        _timed_nvidia("H200"),
    )
}

#: Every target of the table by name, in table order.
TARGETS: dict[str, Target] = {
    f"{hw.name}.{m.name}": Target(f"{hw.name}.{m.name}", hw, m)
    for hw in HARDWARE.values()
    for m in hw.measures
}


def target_names(
    hardware: Iterable[str] | None = None, *, kind: str = "modules"
) -> list[str]:
    """Target names of some hardware, in table order.

    Parameters
    ----------
    hardware : iterable of str, optional
        Names from :data:`HARDWARE`; all of them by default.
    kind : {"modules", "kernels"}, default="modules"
        ``"kernels"``: only the metrics measured per kernel.

    Returns
    -------
    list of str
        ``"<hardware>.<metric>"``.

    Examples
    --------
    >>> target_names(["cpu_x86_64_v3"])
    ['cpu_x86_64_v3.instructions', 'cpu_x86_64_v3.code_bytes', 'cpu_x86_64_v3.dispatches']
    >>> target_names(["cpu_x86_64_v3"], kind="kernels")
    ['cpu_x86_64_v3.instructions', 'cpu_x86_64_v3.code_bytes']
    """
    if isinstance(hardware, str):
        raise TypeError("hardware must be an iterable of names, not a single str")
    if kind not in COST_KINDS:
        raise ValueError(f"kind must be one of {COST_KINDS}, got {kind!r}")
    names = list(HARDWARE) if hardware is None else list(hardware)
    unknown = [n for n in names if n not in HARDWARE]
    if unknown:
        raise ValueError(f"unknown hardware {unknown}; choose from {sorted(HARDWARE)}")
    return [
        f"{n}.{m}"
        for n in names
        for m in (
            HARDWARE[n].kernel_metrics if kind == "kernels" else HARDWARE[n].metrics
        )
    ]


def target_unit(target: str) -> str:
    """The unit of a target name such as ``cpu_x86_64_v3.instructions``.

    Returns "" for a name that is not in the table.

    Examples
    --------
    >>> target_unit("amd_gfx942.occupancy")
    'fraction of max waves'
    """
    entry = TARGETS.get(target)
    return "" if entry is None else entry.unit


def _matches(word: str, name: str) -> bool:
    return word == name or word in name.split(".")


def select_targets(words, available: Sequence[str]) -> list[str]:
    """The targets that some words select, in the order of ``available``.

    The grammar every part of the package uses (``load_dataset(targets=...)``,
    ``mlircost predict --targets``, :func:`resolve_target`): a word is a full
    target name (``nvidia_sm80.registers``), a hardware name (``nvidia_sm80``:
    all its targets) or a metric name (``instructions``: that metric on every
    hardware that has it).

    Parameters
    ----------
    words : str, iterable of str or None
        What to select; None selects everything.
    available : sequence of str
        The target names to choose from (a dataset's, a model's).

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        For a word that selects nothing, listing the available names.

    Examples
    --------
    >>> names = ["cpu_host.latency_us", "cpu_x86_64_v3.instructions",
    ...          "nvidia_sm80.registers", "nvidia_sm90.registers"]
    >>> select_targets("registers", names)
    ['nvidia_sm80.registers', 'nvidia_sm90.registers']
    >>> select_targets(["cpu_host", "cpu_x86_64_v3.instructions"], names)
    ['cpu_host.latency_us', 'cpu_x86_64_v3.instructions']
    """
    available = list(available)
    if words is None:
        return available
    if isinstance(words, str):
        words = [words]
    chosen: set[str] = set()
    for word in words:
        found = {name for name in available if _matches(word, name)}
        if not found:
            raise ValueError(
                f"unknown target {word!r}; choose from: {', '.join(available)}"
            )
        chosen |= found
    return [name for name in available if name in chosen]


def resolve_target(available: Sequence[str], word: str) -> int:
    """Column index of the one target that ``word`` selects.

    Same grammar as :func:`select_targets`; a word that selects several
    targets (``registers`` when two NVIDIA GPUs have it) is ambiguous.

    Raises
    ------
    ValueError
        For an unknown or ambiguous word, listing the names.

    Examples
    --------
    >>> resolve_target(["cpu_host.latency_us", "cpu_x86_64_v3.instructions"],
    ...                "instructions")
    1
    """
    names = list(available)
    found = select_targets(word, names)
    if len(found) > 1:
        raise ValueError(f"target {word!r} is ambiguous: {', '.join(found)}")
    return names.index(found[0])


def clip_to_domain(values: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Clip each column of ``values`` to its target's bounds, in place.

    Columns whose target is not in the table are left as they are.

    Parameters
    ----------
    values : ndarray of shape (n_samples, len(names))
    names : sequence of str

    Returns
    -------
    ndarray
        ``values``.

    Examples
    --------
    >>> clip_to_domain(np.array([[-3.0, 1.4, -1.0]]),
    ...                ["cpu_x86_64_v3.instructions", "nvidia_sm80.occupancy", "y"])
    array([[ 0.,  1., -1.]])
    """
    lower, upper = _domain_bounds(tuple(names))
    return np.clip(values, lower, upper, out=values)


@functools.lru_cache(maxsize=64)
def _domain_bounds(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-column lower and upper bounds, infinite for a target not in the table.

    One ``np.clip`` over the whole array instead of one per column: a model's
    ``predict`` of one row spent ~0.06 ms in the per-column loop.
    """
    lower = np.full(len(names), -np.inf)
    upper = np.full(len(names), np.inf)
    for j, name in enumerate(names):
        entry = TARGETS.get(name)
        if entry is not None:
            lower[j], upper[j] = entry.bounds
    lower.flags.writeable = upper.flags.writeable = False
    return lower, upper
