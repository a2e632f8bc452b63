"""CPU measurements: instructions (callgrind), code bytes (ELF), latency.

Instructions
    The real ``iree-run-module`` runs the module on the single-threaded
    ``local-sync`` device under ``valgrind --tool=callgrind``, collecting only
    inside ``iree_vm_invoke`` (``--collect-atstart=no --toggle-collect``): the
    count is the inclusive cost of invoking the entry function, without process
    start-up, module loading or input parsing. ``LD_BIND_NOW=1`` keeps the
    dynamic linker's lazy symbol resolution out of the count. The module is
    compiled with ``--iree-llvmcpu-link-embedded=false`` so that the dispatch
    functions have symbols; a kernel's count is its dispatch function's
    inclusive count, summed over the workgroups that ran it
    (:func:`read_callgrind`), divided by the number of times the program
    dispatches it: IREE keeps one executable for identical dispatches, so a
    kernel of a layer repeated six times runs six times per invocation (the
    dispatch sites of its export in the program's flow IR,
    :func:`~._compile.dispatch_calls`; callgrind's own call count is that
    times the workgroups per dispatch). The run is repeated and must give the
    same counts.
Code bytes
    The module's: the size of the executable sections of the embedded ELF(s)
    that IREE puts in the deployed module. A kernel's: the size of its dispatch
    function's symbol in the system shared library.
Latency
    ``iree-benchmark-module`` with ``--benchmark_repetitions``; the median
    per-invocation wall time and the interquartile range relative to it. Only
    one timing runs at a time on a host (:func:`timing_lock`).

Inputs are deterministic: seeded standard-normal floats, integers in {0, 1}
(valid indices for any gather), written as raw binary files.

Callgrind runs in a fresh folder whose path has a fixed length, with
relative paths and a fixed minimal environment: the lengths of the working
folder, the arguments and the environment shift the process's memory layout,
and with it the alignment-dependent instruction counts of the runtime's
``memset`` and ``memcpy``; a record collected in one folder and verified in
another would otherwise differ by a few instructions.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._toolchain import ToolError, find_tools, run_tool

__all__ = [
    "INSTRUCTION_REGION",
    "InstructionCount",
    "Latency",
    "benchmark_samples_us",
    "count_dispatch_instructions",
    "count_instructions",
    "elf_code_bytes",
    "elf_function_sizes",
    "entry_function",
    "measure_latency",
    "read_callgrind",
    "timing_lock",
    "write_inputs",
]

#: The runtime function whose inclusive cost is counted.
INSTRUCTION_REGION = "iree_vm_invoke"

_FLOAT_TYPES = {"f16": np.float16, "f32": np.float32, "f64": np.float64}
_INT_TYPES = {
    "i1": np.uint8,
    "i8": np.int8,
    "i16": np.int16,
    "i32": np.int32,
    "i64": np.int64,
    "si8": np.int8,
    "si16": np.int16,
    "si32": np.int32,
    "si64": np.int64,
    "ui8": np.uint8,
    "ui16": np.uint16,
    "ui32": np.uint32,
    "ui64": np.uint64,
}
# Where callgrind runs; the same on every host (see the module docstring).
_RUN_ROOT = "/tmp"
_TIME_UNITS_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


@dataclass
class InstructionCount:
    """Instructions executed per invocation.

    Attributes
    ----------
    total : int
        Inclusive count of the entry function's invocation.
    kernels : dict
        Dispatch function name -> inclusive count (all its workgroups, all
        its dispatches).
    calls : dict
        Dispatch function name -> how often callgrind saw it called (once
        per workgroup of each of its dispatches).
    runs : int
        How many runs gave these same counts.
    args : list of str
        The valgrind command of one run.
    seconds : float
        Wall time of all runs.
    """

    total: int
    kernels: dict[str, int]
    runs: int
    args: list[str]
    seconds: float
    calls: dict[str, int] = field(default_factory=dict)


@dataclass
class Latency:
    """Wall time per invocation.

    Attributes
    ----------
    median_us : float
        Median over repetitions.
    spread : float
        Interquartile range over the repetitions, relative to the median.
    samples_us : list of float
        Mean per-invocation time of each repetition.
    args : list of str
        The ``iree-benchmark-module`` command.
    loadavg : tuple of float
        The host's load averages just before the timing.
    seconds : float
        Wall time of the benchmark run.
    """

    median_us: float
    spread: float
    samples_us: list[float]
    args: list[str]
    loadavg: tuple[float, float, float]
    seconds: float


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    return [*parts, tail] if tail else parts


def _torch_to_tensor(mlir_type: str) -> str:
    """``!torch.vtensor<[4,16],f32>`` -> ``tensor<4x16xf32>``; others unchanged."""
    m = re.fullmatch(r"!torch\.vtensor<\[([^\]]*)\],\s*(\w+)>", mlir_type)
    if not m:
        return mlir_type
    dims = [d.strip().replace("-1", "?") for d in m.group(1).split(",") if d.strip()]
    return f"tensor<{''.join(d + 'x' for d in dims)}{m.group(2)}>"


def _source_signature(source: str, name: str) -> list[str] | None:
    m = re.search(rf"func\.func\s+(?:public\s+)?@{re.escape(name)}\s*\(", source)
    if not m:
        return None
    depth, start = 1, m.end()
    for i in range(start, len(source)):
        depth += {"(": 1, ")": -1}.get(source[i], 0)
        if depth == 0:
            return _arg_types(source[start:i])
    return None


def _arg_types(args: str) -> list[str]:
    types = [a.split(":", 1)[1].strip() for a in _split_top_level(args)]
    return [_torch_to_tensor(t.split(" {", 1)[0].strip()) for t in types]


def entry_function(
    vmfb: str | Path, source: str | None = None, *, timeout: float = 60.0
) -> tuple[str, list[str]]:
    """The entry function of a module and its argument types.

    Read from the ABI declaration that ``iree-dump-module`` prints for each
    exported function or, where there is none (modules compiled from the
    torch dialect), from the function's signature in ``source``. The entry is
    ``main`` if the module has one, else its first exported function that is
    neither an initializer (``__...``) nor an ``...$async`` variant.

    Parameters
    ----------
    vmfb : path
        A compiled module.
    source : str, optional
        The MLIR text it was compiled from.
    timeout : float, default 60
        Seconds allowed for ``iree-dump-module``.

    Returns
    -------
    name : str
    arg_types : list of str
        MLIR builtin types, e.g. ``["tensor<8x16xf32>", "i32"]``.

    Raises
    ------
    ToolError
        If the module cannot be read or its entry's signature is unknown.
    """
    run = run_tool(
        [find_tools().require("iree_dump_module"), str(vmfb)], timeout=timeout
    )
    exports = re.findall(r"^\s*\[\s*\d+\]\s+([\w$.-]+)\(", run.stdout, re.M)
    exports = [e for e in exports if not e.startswith("__") and "$" not in e]
    if not exports:
        raise ToolError("the module exports no callable function")
    name = "main" if "main" in exports else exports[0]
    decl = re.search(
        rf"iree\.abi\.declaration:\s*(?:\w+\s+)?func\s+@{re.escape(name)}\((.*)\)\s*->",
        run.stdout,
    )
    if decl:
        return name, _arg_types(decl.group(1))
    types = _source_signature(source, name) if source else None
    if types is None:
        raise ToolError(f"no signature of the entry function @{name} was found")
    return name, types


def _input_flag(mlir_type: str, rng: np.random.Generator, path: Path) -> str:
    tensor = re.fullmatch(r"tensor<((?:[\d?]+x)*)(\w+)>", mlir_type)
    element = tensor.group(2) if tensor else mlir_type
    if not tensor:
        if element in _INT_TYPES or element == "index":
            return "1"
        if element in _FLOAT_TYPES or element == "bf16":
            return "0.5"
        raise ToolError(f"cannot make an input of type {mlir_type}")
    dims = tensor.group(1).rstrip("x")
    if "?" in dims:
        raise ToolError(f"cannot make an input of dynamic shape {mlir_type}")
    shape = tuple(int(d) for d in dims.split("x")) if dims else ()
    if element in _FLOAT_TYPES:
        data = rng.standard_normal(shape).astype(_FLOAT_TYPES[element])
    elif element == "bf16":
        bits = rng.standard_normal(shape).astype(np.float32).view(np.uint32)
        data = (bits >> 16).astype(np.uint16)
    elif element in _INT_TYPES:
        data = rng.integers(0, 2, size=shape).astype(_INT_TYPES[element])
    else:
        raise ToolError(f"cannot make an input of element type {element}")
    data.tofile(path)
    # Module ABIs take signless integers, whatever the source's signedness.
    element = re.sub(r"^[su]i(?=\d)", "i", element)
    return f"{dims + 'x' if dims else ''}{element}=@{path.name}"


def write_inputs(
    arg_types: Sequence[str], folder: str | Path, seed: int = 0
) -> list[str]:
    """Write deterministic inputs and return their ``--input=`` values.

    Parameters
    ----------
    arg_types : sequence of str
        MLIR types of the entry function's arguments.
    folder : path
        Where the raw binary files go.
    seed : int, default 0
        Seed of the data.

    Returns
    -------
    list of str
        One ``--input`` value per argument (``8x16xf32=@input0.bin`` or a
        scalar), file names relative to ``folder``: run the tools there.

    Raises
    ------
    ToolError
        For a dynamic shape or an element type with no input format.
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        _input_flag(t, rng, folder / f"input{i}.bin") for i, t in enumerate(arg_types)
    ]


def read_callgrind(
    path: str | Path, functions: Sequence[str] = (), *, calls: dict | None = None
) -> tuple[int, dict]:
    """Total and per-function inclusive ``Ir`` counts of a callgrind output file.

    A function's inclusive count is its self cost plus the inclusive cost of
    its calls to other functions (callgrind's ``calls=`` lines), summed over
    every file its code came from (inlined code carries other file names).

    Parameters
    ----------
    path : path
        A file written by ``valgrind --tool=callgrind`` with the ``Ir`` event.
    functions : sequence of str, optional
        Function names to report.
    calls : dict, optional
        Filled with function name -> calls to it (the ``calls=`` lines whose
        callee it is), for the named functions that were called.

    Returns
    -------
    total : int
    inclusive : dict
        Function name -> inclusive count, for the named functions that ran.

    Raises
    ------
    ToolError
        If the file has no total.
    """
    wanted = set(functions)
    names: dict[str, str] = {}
    inclusive: dict[str, int] = {}
    total, positions, current, callee, in_call = None, 1, None, None, False
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith(("fn=", "cfn=")):
                key, value = line.rstrip("\n").split("=", 1)
                m = re.match(r"\((\d+)\)(?:\s+(.*))?$", value)
                if m and m.group(2) is not None:
                    names[m.group(1)] = m.group(2)
                name = names.get(m.group(1), "") if m else value
                if key == "fn":
                    current = name
                else:
                    callee = name
            elif line.startswith("calls="):
                in_call = True
                if calls is not None and callee in wanted and callee != current:
                    count = int(line[6:].split()[0])
                    calls[callee] = calls.get(callee, 0) + count
            elif line[:1] in "0123456789+-*" and line.strip():
                tokens = line.split()
                cost = int(tokens[positions]) if len(tokens) > positions else 0
                if current in wanted and not (in_call and callee == current):
                    inclusive[current] = inclusive.get(current, 0) + cost
                in_call = False
            elif line.startswith("positions:"):
                positions = len(line.split()) - 1
            elif line.startswith(("totals:", "summary:")):
                total = int(line.split()[1])
    if total is None:
        raise ToolError(f"callgrind wrote no total to {Path(path).name}")
    return total, inclusive


def count_instructions(
    vmfb: str | Path,
    function: str,
    inputs: Sequence[str],
    *,
    inputs_dir: str | Path,
    kernels: Sequence[str] = (),
    timeout: float = 900.0,
    runs: int = 2,
) -> InstructionCount:
    """Count the instructions of one invocation under callgrind.

    The module and the input files are copied into a fresh folder
    ``/tmp/mlircost-cg-XXXXXXXX`` (a path of fixed length) and run there with
    relative paths, a copy of ``iree-run-module`` and a fixed environment, so
    that the count does not depend on where the caller keeps its files or where
    IREE is installed.

    Parameters
    ----------
    vmfb : path
        Module compiled for llvm-cpu (a system-library build names kernels).
    function : str
        Entry function.
    inputs : sequence of str
        ``--input`` values (:func:`write_inputs`).
    inputs_dir : path
        The folder of the input files.
    kernels : sequence of str, optional
        Dispatch function names to attribute counts to.
    timeout : float, default 900
        Seconds allowed per run.
    runs : int, default 2
        Runs that must agree exactly.

    Returns
    -------
    InstructionCount

    Raises
    ------
    ToolError
        If a tool fails or times out, or the runs disagree.
    """
    tools = find_tools()
    files = {"module.vmfb": Path(vmfb)}
    files.update((p.name, p) for p in Path(inputs_dir).glob("input*.bin"))
    count = _callgrind(
        tools.require("iree_run_module"),
        files,
        [
            "--device=local-sync",
            "--module=module.vmfb",
            f"--function={function}",
            *(f"--input={v}" for v in inputs),
        ],
        INSTRUCTION_REGION,
        kernels,
        timeout=timeout,
        runs=runs,
    )
    if count.total <= 0:
        raise ToolError(
            f"callgrind counted no instructions inside {INSTRUCTION_REGION}"
        )
    return count


def _callgrind(
    tool: str,
    files: dict[str, Path],
    tool_args: Sequence[str],
    region: str,
    functions: Sequence[str],
    *,
    timeout: float,
    runs: int,
) -> InstructionCount:
    """Run ``tool`` ``runs`` times under callgrind, counting inside ``region``.

    The tool and ``files`` (name in the run folder -> path) are copied into a
    fresh folder of fixed path length and run there by relative names with a
    fixed environment (see the module docstring).
    """
    results, seconds = [], 0.0
    with tempfile.TemporaryDirectory(prefix="mlircost-cg-", dir=_RUN_ROOT) as tmp:
        for name, path in files.items():
            shutil.copyfile(path, Path(tmp) / name)
        # The program's own path lands on its stack (argv[0], AT_EXECFN) and its
        # length shifts memcpy alignment by a few instructions: run a copy by a
        # fixed relative name so counts do not depend on where IREE is installed.
        program = f"./{Path(tool).name}"
        shutil.copy2(tool, Path(tmp) / program)
        for i in range(runs):
            out = f"callgrind.{i}.out"
            args = [
                find_tools().require("valgrind"),
                "--tool=callgrind",
                "--collect-atstart=no",
                f"--toggle-collect={region}",
                f"--callgrind-out-file={out}",
                program,
                *tool_args,
            ]
            run = run_tool(
                args,
                timeout=timeout,
                cwd=tmp,
                env={"LD_BIND_NOW": "1", "PATH": os.defpath},
                inherit_env=False,
                without_io_uring=True,
            )
            seconds += run.seconds
            called: dict[str, int] = {}
            total, inclusive = read_callgrind(Path(tmp) / out, functions, calls=called)
            results.append((total, inclusive, called))
    if any(r != results[0] for r in results[1:]):
        totals = [r[0] for r in results]
        raise ToolError(f"instruction counts differ between identical runs: {totals}")
    total, per_kernel, called = results[0]
    return InstructionCount(total, per_kernel, runs, args, seconds, called)


def count_dispatch_instructions(
    library: str | Path,
    function: str,
    *,
    ordinal: int,
    workgroup_count: Sequence[int],
    bindings: Sequence[int],
    constants: Sequence[int] = (),
    timeout: float = 300.0,
    runs: int = 2,
) -> InstructionCount:
    """Count the instructions of one dispatch of a standalone executable.

    ``iree-benchmark-executable`` runs the export once (``--batch_size=1
    --benchmark_min_time=1x``) on ``local-sync`` with zero-filled bindings,
    under callgrind collecting inside the dispatch function only, in the
    fixed run folder of :func:`count_instructions`. The count is the dispatch
    function's inclusive count over all its workgroups: what a kernel
    record's per-call label is, without the rest of its program.

    Parameters
    ----------
    library : path
        The executable, compiled for llvm-cpu as a system shared library
        (``--iree-llvmcpu-link-embedded=false``, so the function has a symbol).
    function : str
        The export's (dispatch function's) name.
    ordinal : int
        The export's ordinal.
    workgroup_count : sequence of int
        ``x, y, z`` workgroups of the dispatch.
    bindings : sequence of int
        Bytes of each binding, in binding order.
    constants : sequence of int, optional
        The export's push constants.
    timeout : float, default 300
        Seconds allowed per run.
    runs : int, default 2
        Runs that must agree exactly.

    Returns
    -------
    InstructionCount
        ``total`` and ``kernels[function]`` are the dispatch's count.

    Raises
    ------
    ToolError
        If a tool fails or times out, the runs disagree, or the function did
        not run once per workgroup.
    """
    count = _callgrind(
        find_tools().require("iree_benchmark_executable"),
        {"executable.so": Path(library)},
        [
            "--device=local-sync",
            "--executable_format=system-elf-x86_64",
            "--executable_file=executable.so",
            f"--entry_point={ordinal}",
            *(f"--binding={max(size, 1)}xi8" for size in bindings),
            *(f"--constant={value}" for value in constants),
            f"--workgroup_count={','.join(map(str, workgroup_count))}",
            "--batch_size=1",
            "--benchmark_min_time=1x",
        ],
        function,
        [function],
        timeout=timeout,
        runs=runs,
    )
    workgroups = math.prod(workgroup_count)
    if count.calls.get(function) != workgroups or count.kernels.get(function, 0) <= 0:
        raise ToolError(
            f"@{function} ran {count.calls.get(function, 0)} times, "
            f"not once per workgroup ({workgroups})"
        )
    return count


def _elf_sections(data: bytes) -> list[tuple[int, int, int, int, int, int]]:
    """(type, flags, offset, size, link, entsize) of each section of an ELF64."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a little-endian 64-bit ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = []
    for i in range(shnum):
        fields = struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
        _, kind, flags, _, offset, size, link, _, _, entsize = fields
        sections.append((kind, flags, offset, size, link, entsize))
    return sections


def elf_code_bytes(path: str | Path) -> int:
    """Total size of the executable (``SHF_EXECINSTR``) sections of an ELF64."""
    sections = _elf_sections(Path(path).read_bytes())
    return sum(size for _, flags, _, size, _, _ in sections if flags & 0x4)


def elf_function_sizes(path: str | Path) -> dict[str, int]:
    """Function symbol name -> size in bytes, from an ELF64's ``.symtab``."""
    data = Path(path).read_bytes()
    sections = _elf_sections(data)
    sizes: dict[str, int] = {}
    for kind, _, offset, size, link, entsize in sections:
        if kind != 2 or not entsize:  # SHT_SYMTAB
            continue
        strtab = sections[link]
        for pos in range(offset, offset + size, entsize):
            name_at, info, _, _, _, sym_size = struct.unpack_from("<IBBHQQ", data, pos)
            if info & 0xF != 2:  # STT_FUNC
                continue
            start = strtab[2] + name_at
            name = data[start : data.index(b"\0", start)].decode("utf-8", "replace")
            sizes[name] = max(sizes.get(name, 0), sym_size)
    return sizes


def benchmark_samples_us(report: str) -> list[float]:
    """Per-repetition times in microseconds from a Google Benchmark JSON report.

    Raises
    ------
    ToolError
        If the report cannot be read or holds no repetition.
    """
    try:
        data = json.loads(report[report.index("{") :])
        samples = [
            b["real_time"] * _TIME_UNITS_US[b["time_unit"]]
            for b in data["benchmarks"]
            if b.get("run_type") == "iteration"
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise ToolError(f"unreadable benchmark report: {exc}") from exc
    if not samples:
        raise ToolError("the benchmark reported no repetitions")
    return samples


@contextlib.contextmanager
def timing_lock() -> Iterator[None]:
    """Hold this host's timing lock, so that no two timings overlap."""
    path = Path(tempfile.gettempdir()) / "mlircost-timing-run.lock"
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def measure_latency(
    vmfb: str | Path,
    function: str,
    inputs: Sequence[str],
    *,
    cwd: str | Path,
    device: str = "local-sync",
    repeats: int = 5,
    min_time: float = 0.2,
    timeout: float = 600.0,
) -> Latency:
    """Time a module's entry function with ``iree-benchmark-module``.

    Holds :func:`timing_lock` while timing.

    Parameters
    ----------
    vmfb : path
        Compiled module (for the device).
    function : str
        Entry function.
    inputs : sequence of str
        ``--input`` values.
    cwd : path
        The inputs folder.
    device : str, default "local-sync"
        IREE device (``local-sync``, ``local-task``, ``cuda``).
    repeats : int, default 5
        Benchmark repetitions.
    min_time : float, default 0.2
        Minimum seconds per repetition.
    timeout : float, default 600
        Seconds allowed for the benchmark (waiting for the lock not counted).

    Returns
    -------
    Latency

    Raises
    ------
    ToolError
        If the benchmark fails, times out or reports nothing.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    args = [
        find_tools().require("iree_benchmark_module"),
        f"--device={device}",
        f"--module={os.path.relpath(vmfb, cwd)}",
        f"--function={function}",
        *(f"--input={v}" for v in inputs),
        f"--benchmark_repetitions={repeats}",
        f"--benchmark_min_time={min_time:g}s",
        "--benchmark_format=json",
    ]
    with timing_lock():
        loadavg = os.getloadavg()
        run = run_tool(args, timeout=timeout, cwd=cwd)
    samples = benchmark_samples_us(run.stdout)
    median = float(np.median(samples))
    q25, q75 = np.percentile(samples, [25, 75])
    spread = float((q75 - q25) / median) if median > 0 else 0.0
    return Latency(median, spread, samples, args, loadavg, run.seconds)
