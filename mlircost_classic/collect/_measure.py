"""Compile an MLIR program for every requested hardware and measure it.

:func:`measure` is the collector's one entry to the toolchain. It compiles the
text once per IREE backend that the requested hardware needs, runs the
measurements of :mod:`._measure_cpu` and :mod:`._measure_gpu`, and returns
module-level targets, one :class:`KernelResult` per distinct dispatch and the
failures of the stages that did not succeed.

Kernels are matched across backends by content, not by name: dispatch
formation can differ between backends (in f16 attention programs the
numbering shifts and a name can stand for another computation on CUDA), so
a backend's measurements of an export go to the kernel whose executable
source has the same body (:func:`~._compile.dispatch_content_key`), and a
dispatch only one backend makes is a kernel of its own, with that backend's
text and labels. A kernel's CPU instructions are per call: its inclusive
count divided by how often the program dispatches it (``calls``).

Module targets aggregate the kernels: registers, stack, shared memory, LDS,
scratch, VGPRs and SGPRs are the maximum over kernels, spills the sum and
occupancy the minimum; CPU instructions are counted for the whole invocation
and code bytes for the whole deployed module.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..datasets._targets import HARDWARE, TARGETS
from ._compile import (
    BACKEND_FLAGS,
    INPUT_TYPES,
    Compiled,
    compile_mlir,
    compile_phase,
    dispatch_calls,
    dispatch_content_key,
)
from ._measure_cpu import (
    INSTRUCTION_REGION,
    count_instructions,
    elf_code_bytes,
    elf_function_sizes,
    entry_function,
    measure_latency,
    write_inputs,
)
from ._measure_gpu import (
    AMD_LIMITS,
    NVIDIA_LIMITS,
    amd_occupancy,
    amdgpu_metadata,
    nvidia_gpu_name,
    nvidia_occupancy,
    ptx_threads_per_block,
    ptxas_usage,
    workgroup_memory,
)
from ._toolchain import ToolError, find_tools, host_cpu, toolchain_versions

__all__ = [
    "DEFAULT_TIMEOUTS",
    "KernelResult",
    "MeasureResult",
    "host_cpu",
    "measure",
    "toolchain_versions",
]

#: Seconds allowed per stage: one ``iree-compile``; ``iree-dump-module``;
#: one callgrind run; one benchmark; one ``ptxas``.
DEFAULT_TIMEOUTS = {
    "compile": 600.0,
    "inspect": 60.0,
    "callgrind": 900.0,
    "benchmark": 600.0,
    "ptxas": 120.0,
}

# How a module's value follows from its kernels' (the target table's words).
_AGGREGATE = {"sum": sum, "max": max, "min": min}


def _aggregate(hw: str, metric: str):
    return _AGGREGATE[TARGETS[f"{hw}.{metric}"].aggregate]


_INPUT_SEED = 0
# Errors that mean a tool or its output let a stage down, not a bug here.
_STAGE_ERRORS = (ToolError, OSError, ValueError)


@dataclass
class KernelResult:
    """One IREE dispatch.

    Attributes
    ----------
    name : str
        Export (dispatch function) name on the first backend compiled of
        llvm-cpu, cuda, rocm that made this dispatch.
    source : str or None
        Its executable source MLIR (``--iree-hal-dump-executable-sources-to``)
        from that backend.
    targets : dict
        Per-kernel metrics, e.g. ``"nvidia_sm80.registers"``; CPU
        instructions per call.
    calls : int or None
        How many times one invocation of the program dispatches it (llvm-cpu),
        when known.
    """

    name: str
    source: str | None
    targets: dict[str, float] = field(default_factory=dict)
    calls: int | None = None


@dataclass
class MeasureResult:
    """What :func:`measure` found.

    Attributes
    ----------
    targets : dict
        Module-level target name -> value.
    kernels : list of KernelResult
        One per dispatch, merged across hardware.
    failures : list of (str, str)
        ``(stage, message)`` of each stage that failed, the stage named
        ``"<step>:<hardware>"`` (``"compile:nvidia_sm80"``).
    provenance : dict
        Tool versions, exact flags and commands, host CPU, date, seconds per
        stage, how each measurement was made.
    """

    targets: dict[str, float]
    kernels: list[KernelResult]
    failures: list[tuple[str, str]]
    provenance: dict


class _Session:
    """The state of one :func:`measure` call."""

    def __init__(self, root: Path, timeouts: dict[str, float]):
        self.root = root
        self.timeouts = timeouts
        self.targets: dict[str, float] = {}
        self.kernels: dict[str, KernelResult] = {}
        self.failures: list[tuple[str, str]] = []
        self.seconds: dict[str, float] = {}
        self.commands: dict[str, list[str]] = {}
        self.compiled: dict[str, Compiled] = {}
        self.details: dict[str, dict] = {}
        # backend -> export name -> content key of the kernel it is.
        self.aliases: dict[str, dict[str, str]] = {}
        self.input_level = "linalg"
        # CUDA export -> launch facts after codegen (workgroup memory, size).
        self.cuda_launch: dict[str, dict[str, int]] | None = None

    @contextlib.contextmanager
    def stage(self, step: str, hardware: Sequence[str], timing: str) -> Iterator[None]:
        """Time a stage; record a failure for each hardware it serves."""
        start = time.perf_counter()
        try:
            yield
        except _STAGE_ERRORS as exc:
            message = str(exc) if isinstance(exc, ToolError) else _describe(exc)
            self.failures += [(f"{step}:{hw}", message) for hw in hardware]
        finally:
            self.seconds[timing] = self.seconds.get(timing, 0.0) + (
                time.perf_counter() - start
            )

    def command(self, key: str, args: Sequence[str]) -> None:
        """Record a command, without this call's folder or tool locations."""
        tools = {p for p in vars(find_tools()).values() if p}
        self.commands[key] = [
            Path(a).name if a in tools else a.replace(str(self.root), "<workdir>")
            for a in args
        ]

    def phase(self, key: str, backend: str, phase: str) -> str:
        """The program's IR after ``phase`` for ``backend``; flags under ``key``.

        Read from the backend's compile when it was split at that phase
        (:data:`_SPLIT_AT`), else compiled up to it.
        """
        compiled = self.compiled.get(backend)
        if compiled is not None and phase in compiled.kept:
            self.commands[key] = [*compiled.flags, f"--compile-to={phase}"]
            return compiled.kept[phase].read_text(encoding="utf-8")
        ir, flags, _ = compile_phase(
            self.root / "input.mlir",
            backend,
            phase,
            self.root / f"{backend}-{phase}",
            input_level=self.input_level,
            timeout=self.timeouts["compile"],
        )
        self.commands[key] = flags
        return ir

    def add_sources(self, backend: str, sources: dict[str, str]) -> None:
        """Pair a backend's dispatches with the kernels found so far, by content."""
        aliases = self.aliases.setdefault(backend, {})
        for name, text in sources.items():
            key = dispatch_content_key(text)
            self.kernels.setdefault(key, KernelResult(name, text))
            # Tools spell some export names their own way: ptxas turns
            # ``main$async_dispatch_0`` into ``main_async_dispatch_0``.
            for spelling in (name, name.replace("$", "_")):
                aliases.setdefault(spelling, key)

    def kernel(self, backend: str, name: str) -> KernelResult | None:
        """The kernel a backend's tool reports as ``name``, if it dumped it."""
        key = self.aliases.get(backend, {}).get(name.strip("'\""))
        return self.kernels.get(key) if key else None

    def kernel_metric(self, backend: str, name: str, target: str, value) -> None:
        kernel = self.kernel(backend, name)
        if kernel is not None:
            kernel.targets[target] = value

    def aggregate(
        self, hw: str, backend: str, per_kernel: dict[str, dict[str, float]]
    ) -> None:
        for kernel, metrics in per_kernel.items():
            for metric, value in metrics.items():
                self.kernel_metric(backend, kernel, f"{hw}.{metric}", value)
        for metric in HARDWARE[hw].metrics:
            values = [m[metric] for m in per_kernel.values() if metric in m]
            if values:
                self.targets[f"{hw}.{metric}"] = _aggregate(hw, metric)(values)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def _folder(workdir: str | Path | None) -> Iterator[Path]:
    if workdir is not None:
        path = Path(workdir)
        path.mkdir(parents=True, exist_ok=True)
        yield path
    else:
        with tempfile.TemporaryDirectory(prefix="mlircost-measure-") as tmp:
            yield Path(tmp)


def measure(
    mlir_text: str,
    hardware: Sequence[str],
    *,
    input_level: str = "linalg",
    workdir: str | Path | None = None,
    timeouts: dict[str, float] | None = None,
    repeats: int = 5,
    reuse_compiles: bool = False,
) -> MeasureResult:
    """Compile an MLIR program and measure it on the requested hardware.

    Every number comes from a real tool run (iree-compile, valgrind, ptxas,
    iree-benchmark-module); occupancy is derived from them by the documented
    formulas of :mod:`._measure_gpu`.

    Parameters
    ----------
    mlir_text : str
        The program, at ``input_level``; resource blobs must be present.
    hardware : sequence of str
        Names from :data:`~._targets.HARDWARE`.
    input_level : {"linalg", "torch", "stablehlo", "tosa"}, default "linalg"
        The dialect level of ``mlir_text``.
    workdir : path, optional
        Folder for modules, dumps and tool outputs, kept afterwards; a
        temporary folder (removed) by default.
    timeouts : dict, optional
        Seconds per stage, overriding :data:`DEFAULT_TIMEOUTS` (keys
        ``compile``, ``inspect``, ``callgrind``, ``benchmark``, ``ptxas``).
    repeats : int, default 5
        Benchmark repetitions of latency targets.
    reuse_compiles : bool, default False
        Take a backend's module and dumps from an earlier call in the same
        ``workdir`` when they were compiled from the same text with the same
        flags (see :func:`~._compile.compile_mlir`'s ``reuse``). The runner
        uses this so that the host-timing step, which runs alone, does not
        compile again what the parallel step compiled.

    Returns
    -------
    MeasureResult
        A failed compile, tool or timeout is one of its ``failures``; the
        targets of the other hardware are still measured.

    Raises
    ------
    ValueError
        For unknown hardware, input level or timeout keys.
    TypeError
        If ``hardware`` is a single string.
    """
    if isinstance(hardware, str):
        raise TypeError("hardware must be a sequence of names, not a single str")
    unknown = [hw for hw in hardware if hw not in HARDWARE]
    if unknown:
        raise ValueError(f"unknown hardware {unknown}; choose from {sorted(HARDWARE)}")
    if input_level not in INPUT_TYPES:
        raise ValueError(
            f"unknown input level {input_level!r}; choose from {list(INPUT_TYPES)}"
        )
    bad = sorted(set(timeouts or {}) - set(DEFAULT_TIMEOUTS))
    if bad:
        raise ValueError(
            f"unknown timeout keys {bad}; choose from {list(DEFAULT_TIMEOUTS)}"
        )
    hardware = list(dict.fromkeys(hardware))
    with _folder(workdir) as root:
        session = _Session(root, {**DEFAULT_TIMEOUTS, **(timeouts or {})})
        session.input_level = input_level
        hardware = [hw for hw in hardware if _has_device(session, hw)]
        source = root / "input.mlir"
        source.write_text(mlir_text, encoding="utf-8")
        _compile_all(session, source, hardware, input_level, reuse_compiles)
        entry = _entry(session, hardware)
        nvidia = [hw for hw in hardware if HARDWARE[hw].backend == "ptxas"]
        if nvidia and "cuda" in session.compiled:
            _cuda_launch(session, nvidia)
        # Each hardware is measured by its backend (the target table's word).
        for hw in hardware:
            _BACKEND_RUN[HARDWARE[hw].backend](session, hw, entry, repeats)
        provenance = _provenance(session, hardware, input_level, entry, repeats)
    return MeasureResult(
        targets=session.targets,
        kernels=list(session.kernels.values()),
        failures=session.failures,
        provenance=provenance,
    )


#: Backend -> the phase its compile is split at, for the readers of that
#: phase's IR (the CUDA exports' launch facts, the dispatch sites per kernel).
_SPLIT_AT = {"cuda": "executable-targets", "llvm-cpu": "flow"}


def _compile_all(
    session: _Session,
    source: Path,
    hardware: list[str],
    input_level: str,
    reuse: bool = False,
) -> None:
    for backend in BACKEND_FLAGS:
        users = [hw for hw in hardware if backend in HARDWARE[hw].compile_for]
        if not users:
            continue
        if backend == "llvm-cpu-system" and "llvm-cpu" not in session.compiled:
            continue  # the same program failed for llvm-cpu, and is recorded
        with session.stage("compile", users, f"compile:{backend}"):
            compiled = compile_mlir(
                source,
                backend,
                session.root / backend,
                input_level=input_level,
                timeout=session.timeouts["compile"],
                reuse=reuse,
                split_at=_SPLIT_AT.get(backend),
            )
            session.compiled[backend] = compiled
            session.commands[f"compile:{backend}"] = compiled.flags
        if backend in session.compiled:
            session.add_sources(backend, session.compiled[backend].sources)


def _entry(session: _Session, hardware: list[str]) -> tuple | None:
    """The entry function and ``--input`` values, if anything runs the module."""
    runners = [hw for hw in hardware if HARDWARE[hw].backend in _RUNS_MODULE]
    built = [
        b for b in ("llvm-cpu", "llvm-cpu-system", "cuda") if b in session.compiled
    ]
    if not runners or not built:
        return None
    result = None
    with session.stage("inputs", runners, "inputs"):
        vmfb = session.compiled[built[0]].vmfb
        source = (session.root / "input.mlir").read_text(encoding="utf-8")
        name, types = entry_function(vmfb, source, timeout=session.timeouts["inspect"])
        result = name, types, write_inputs(types, session.root / "inputs", _INPUT_SEED)
    return result


def _measure_cpu(session: _Session, hw: str, entry: tuple | None, _repeats) -> None:
    deployed = session.compiled.get("llvm-cpu")
    system = session.compiled.get("llvm-cpu-system")
    if deployed is not None:
        with session.stage("code_bytes", [hw], "code_bytes"):
            elves = [b for b in deployed.binaries if b.suffix == ".so"]
            if deployed.sources and not elves:
                raise ToolError("iree-compile dumped no executable ELF")
            session.targets[f"{hw}.code_bytes"] = sum(map(elf_code_bytes, elves))
            session.targets[f"{hw}.dispatches"] = len(deployed.sources)
    if system is None:
        return
    kernels = sorted(system.sources)
    with session.stage("code_bytes", [hw], "code_bytes"):
        sizes: dict[str, int] = {}
        for lib in (b for b in system.binaries if b.suffix == ".so"):
            sizes.update(elf_function_sizes(lib))
        for name in kernels:
            if name in sizes:
                session.kernel_metric(
                    "llvm-cpu-system", name, f"{hw}.code_bytes", sizes[name]
                )
    if entry is None:
        return
    calls: dict[str, int] = {}
    with session.stage("calls", [hw], "calls"):
        calls = dispatch_calls(session.phase("calls", "llvm-cpu", "flow"))
        for name, n in calls.items():
            if (kernel := session.kernel("llvm-cpu", name)) is not None:
                kernel.calls = n
    with session.stage("callgrind", [hw], "callgrind"):
        name, _, inputs = entry
        count = count_instructions(
            system.vmfb,
            name,
            inputs,
            kernels=kernels,
            inputs_dir=session.root / "inputs",
            timeout=session.timeouts["callgrind"],
        )
        session.command("callgrind", count.args)
        session.targets[f"{hw}.instructions"] = count.total
        for kernel, value in count.kernels.items():
            # Without the number of dispatches a sum over calls is no label.
            if calls.get(kernel):
                per_call = round(value / calls[kernel])
                session.kernel_metric(
                    "llvm-cpu-system", kernel, f"{hw}.instructions", per_call
                )


def _measure_latency(
    session: _Session, hw: str, entry: tuple | None, repeats: int
) -> None:
    backend = HARDWARE[hw].options["iree_backend"]
    device = HARDWARE[hw].options["device"]
    if backend not in session.compiled or entry is None:
        return
    with session.stage("benchmark", [hw], f"benchmark:{hw}"):
        name, _, inputs = entry
        latency = measure_latency(
            session.compiled[backend].vmfb,
            name,
            inputs,
            cwd=session.root / "inputs",
            device=device,
            repeats=repeats,
            timeout=session.timeouts["benchmark"],
        )
        session.command(f"benchmark:{hw}", latency.args)
        session.targets[f"{hw}.latency_us"] = latency.median_us
        session.targets[f"{hw}.latency_us_spread"] = latency.spread
        session.details.setdefault(hw, {}).update(
            device=device,
            samples_us=[round(s, 3) for s in latency.samples_us],
            loadavg=[round(x, 2) for x in latency.loadavg],
        )


def _measure_nvidia(session: _Session, hw: str, _entry, _repeats) -> None:
    compiled = session.compiled.get("cuda")
    if compiled is None:
        return
    arch = HARDWARE[hw].options["gpu_name"]
    launch = session.cuda_launch
    if launch is None:  # its failure is recorded: shared memory would be wrong
        return
    with session.stage("ptxas", [hw], f"ptxas:{arch}"):
        ptx_files = [b for b in compiled.binaries if b.suffix == ".ptx"]
        if not ptx_files:
            raise ToolError("iree-compile dumped no PTX")
        per_kernel: dict[str, dict[str, float]] = {}
        for ptx in ptx_files:
            threads = ptx_threads_per_block(ptx.read_text(encoding="utf-8"))
            usage, args = ptxas_usage(
                ptx, arch, workdir=ptx.parent, timeout=session.timeouts["ptxas"]
            )
            session.command(f"ptxas:{arch}", args)
            for kernel, metrics in usage.items():
                per_kernel[kernel] = dict(metrics)
                # ptxas sees static shared memory; IREE adds the dynamic size
                # at launch.
                dynamic = launch.get(kernel.replace("_async_", "$async_"), {})
                dynamic = launch.get(kernel, dynamic).get("local_memory", 0)
                per_kernel[kernel]["shared_bytes"] = metrics["shared_bytes"] + dynamic
                if kernel in threads:
                    per_kernel[kernel]["occupancy"] = nvidia_occupancy(
                        arch,
                        metrics["registers"],
                        per_kernel[kernel]["shared_bytes"],
                        threads[kernel],
                    )
        session.aggregate(hw, "cuda", per_kernel)


def _cuda_launch(session: _Session, hardware: list[str]) -> None:
    """Read the CUDA exports' launch facts: the dynamic shared memory that
    IREE launches each kernel with is in no PTX file."""
    with session.stage("launch", hardware, "launch:cuda"):
        ir = session.phase("launch:cuda", "cuda", "executable-targets")
        session.cuda_launch = workgroup_memory(ir)


def _measure_amd(session: _Session, hw: str, _entry, _repeats) -> None:
    chip = HARDWARE[hw].options["chip"]
    compiled = session.compiled.get("rocm")
    if compiled is None:
        return
    with session.stage("metadata", [hw], "metadata:gfx942"):
        listings = [p for p in compiled.intermediates if p.suffix == ".rocmasm"]
        if not listings:
            raise ToolError("iree-compile dumped no ROCm assembly")
        per_kernel: dict[str, dict[str, float]] = {}
        for listing in listings:
            for kernel, meta in amdgpu_metadata(listing.read_text("utf-8")).items():
                metrics = {
                    "vgprs": meta.get("vgpr_count", 0),
                    "sgprs": meta.get("sgpr_count", 0),
                    "spills": meta.get("vgpr_spill_count", 0)
                    + meta.get("sgpr_spill_count", 0),
                    "lds_bytes": meta.get("group_segment_fixed_size", 0),
                    "scratch_bytes": meta.get("private_segment_fixed_size", 0),
                }
                if meta["threads_per_block"]:
                    metrics["occupancy"] = amd_occupancy(
                        chip,
                        metrics["vgprs"],
                        metrics["sgprs"],
                        metrics["lds_bytes"],
                        meta["threads_per_block"],
                    )
                per_kernel[kernel] = metrics
        session.aggregate(hw, "rocm", per_kernel)


#: Measuring code per backend word of the target table: adding a hardware
#: that an existing backend measures needs only its table entry.
_BACKEND_RUN = {
    "callgrind": _measure_cpu,
    "latency": _measure_latency,
    "ptxas": _measure_nvidia,
    "amdgpu_metadata": _measure_amd,
}
# Backends that run the module (and so need its entry function and inputs).
_RUNS_MODULE = ("callgrind", "latency")


def _has_device(session: _Session, hw: str) -> bool:
    """Whether this host has the GPU a hardware is timed on; if not, record why."""
    model = HARDWARE[hw].options.get("gpu_model")
    if model is None:
        return True
    gpu = nvidia_gpu_name()
    if gpu is None or model not in gpu:
        found = f"found {gpu}" if gpu else "no NVIDIA GPU"
        message = f"no NVIDIA {model} on this host ({found}); not measured"
        session.failures.append((f"benchmark:{hw}", message))
        return False
    session.details[hw] = {"gpu": gpu}
    return True


def _provenance(
    session: _Session,
    hardware: list[str],
    input_level: str,
    entry: tuple | None,
    repeats: int,
) -> dict:
    provenance = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host_cpu": host_cpu(),
        "tools": toolchain_versions(),
        "input_level": input_level,
        "commands": session.commands,
        "seconds": {k: round(v, 3) for k, v in session.seconds.items()},
    }
    if entry is not None:
        provenance["inputs"] = {
            "function": entry[0],
            "types": entry[1],
            "seed": _INPUT_SEED,
            "data": "standard normal floats, integers in {0, 1}",
        }
    for hw in (hw for hw in hardware if HARDWARE[hw].backend == "callgrind"):
        provenance[hw] = {
            "instructions": (
                f"callgrind inclusive count of {INSTRUCTION_REGION} in iree-run-module "
                "--device=local-sync (kernel: its dispatch function's inclusive "
                "count divided by its dispatch sites in the llvm-cpu flow IR, "
                "i.e. per call), module linked as system libraries "
                "(--iree-llvmcpu-link-embedded=false), run in "
                "/tmp/mlircost-cg-XXXXXXXX with relative paths and the environment LD_BIND_NOW=1 "
                "PATH=/bin:/usr/bin only; two identical runs required"
            ),
            "code_bytes": "executable sections of the embedded ELF(s) of the module; "
            "kernel: dispatch function symbol size in the system library",
            "dispatches": "number of executable exports (dispatch functions)",
        }
    for hw in hardware:
        if HARDWARE[hw].backend == "latency":
            provenance[hw] = {
                "latency_us": f"median over {repeats} iree-benchmark-module "
                "repetitions (--benchmark_min_time=0.2s)",
                "latency_us_spread": "(75th - 25th percentile) / median",
                **session.details.get(hw, {}),
            }
    derived, aggregation = {}, {}
    for hw in hardware:
        for metric in HARDWARE[hw].measures:
            if metric.aggregate in _AGGREGATE:
                aggregation[metric.name] = metric.aggregate
        if HARDWARE[hw].backend == "ptxas":
            arch = HARDWARE[hw].options["gpu_name"]
            derived[f"{hw}.occupancy"] = (
                f"_measure_gpu.nvidia_occupancy with {NVIDIA_LIMITS[arch]}"
            )
            provenance[hw] = {
                "shared_bytes": "ptxas -v static shared memory plus the "
                "export's workgroup_local_memory (dynamic shared memory, "
                "iree-compile --compile-to=executable-targets)",
            }
        if HARDWARE[hw].backend == "amdgpu_metadata":
            chip = HARDWARE[hw].options["chip"]
            derived[f"{hw}.occupancy"] = (
                f"_measure_gpu.amd_occupancy with {AMD_LIMITS[chip]}"
            )
    if derived:
        provenance["derived"] = derived
        provenance["aggregation"] = aggregation
    return provenance
