"""Compile MLIR text with ``iree-compile`` for one backend, keeping its dumps.

Each backend is a fixed list of flags (:data:`BACKEND_FLAGS`), recorded as is
in the provenance. Besides the module (``.vmfb``) a compile keeps what the
measurements read: each executable's source MLIR (one per dispatch, the text
of a kernel record), the executable binaries (embedded ELF, system shared
library, PTX) and intermediates (the ROCm assembly with its metadata).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ._resources import fill_missing_resources
from ._toolchain import find_tools, run_tool

__all__ = [
    "BACKEND_FLAGS",
    "INPUT_TYPES",
    "Compiled",
    "compile_mlir",
    "compile_phase",
    "dispatch_calls",
    "dispatch_content_key",
    "export_names",
    "iree_dispatches",
]

_CPU = [
    "--iree-hal-target-device=local",
    "--iree-hal-local-target-device-backends=llvm-cpu",
    "--iree-llvmcpu-target-triple=x86_64-unknown-linux-gnu",
    "--iree-llvmcpu-target-cpu=x86-64-v3",
]

#: Flags per backend. ``llvm-cpu`` is the module as deployed (embedded ELF);
#: ``llvm-cpu-system`` links each executable as a system shared library so that
#: valgrind sees the dispatch functions' symbols. IREE 3.13 has no sm_90 CUDA
#: target ("missing GPU target"), so PTX is made for sm_80 and assembled by
#: ptxas for both sm_80 and sm_90.
BACKEND_FLAGS: dict[str, tuple[str, ...]] = {
    "llvm-cpu": tuple(_CPU),
    "llvm-cpu-system": (*_CPU, "--iree-llvmcpu-link-embedded=false"),
    "cuda": ("--iree-hal-target-device=cuda", "--iree-cuda-target=sm_80"),
    "rocm": ("--iree-hal-target-device=hip", "--iree-rocm-target=gfx942"),
}

#: ``--iree-input-type`` per input level; linalg needs no conversion and
#: ``auto`` leaves it as is.
INPUT_TYPES = {
    "linalg": "auto",
    "torch": "torch",
    "stablehlo": "stablehlo",
    "tosa": "tosa",
}

_MANIFEST = "compile.json"
_EXPORT = re.compile(r"hal\.executable\.export\s+(?:public\s+|private\s+)?@([\w$.-]+)")
# A dispatch site in flow IR: ``flow.dispatch @executable::@export``.
_DISPATCH_SITE = re.compile(r"flow\.dispatch\s+@[\w$.-]+::@([\w$.-]+)")
# A dispatch site once streams are formed (``--compile-to=executable-sources``).
_STREAM_SITE = re.compile(r"stream\.cmd\.dispatch\s+@[\w$.-]+::@[\w$.-]+::@([\w$.-]+)")
# What differs between backends' sources of one computation: the variant's
# name and target, and the dispatch numbering in symbol names.
_VARIANT = re.compile(
    r"hal\.executable\.variant\s+(?:public\s+)?@[\w$.-]+\s+target\(.*"
)
_DISPATCH_NUMBER = re.compile(r"[\w$.-]*?dispatch_\d+")
# Printing flags that keep a phase's output small: weights are elided.
_ELIDE = (
    "--mlir-elide-elementsattrs-if-larger=16",
    "--mlir-elide-resource-strings-if-larger=16",
)


@dataclass
class Compiled:
    """The outputs of one ``iree-compile`` run.

    Attributes
    ----------
    backend : str
        Key of :data:`BACKEND_FLAGS`.
    vmfb : Path
        The compiled module.
    sources : dict
        Export (dispatch function) name -> executable source MLIR.
    binaries : list of Path
        Dumped executable binaries (``.so``, ``.ptx``, ``.hsaco``).
    intermediates : list of Path
        Dumped intermediates (``.ll``, ``.rocmasm``).
    flags : list of str
        The exact flags (dump folders are relative to the output folder).
    seconds : float
        Wall time of the compile.
    reused : bool
        Whether these are the outputs of an earlier identical compile in the
        same folder (``compile_mlir(..., reuse=True)``).
    kept : dict
        Phase -> file of the program's IR at that phase, weights included: the
        phase the compile was split at (``compile_mlir(..., split_at=...)``).
    """

    backend: str
    vmfb: Path
    sources: dict[str, str]
    binaries: list[Path]
    intermediates: list[Path] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    seconds: float = 0.0
    reused: bool = False
    kept: dict[str, Path] = field(default_factory=dict)


def export_names(source: str) -> list[str]:
    """Names of the ``hal.executable.export`` ops of an executable source."""
    return _EXPORT.findall(source)


def dispatch_calls(flow_text: str) -> dict[str, int]:
    """Export name -> number of dispatch sites in a program's flow IR.

    IREE keeps one executable for identical dispatches
    (``iree-flow-deduplicate-executables``), so a kernel of a transformer
    layer repeated six times has six ``flow.dispatch`` sites of one export;
    each site runs once per invocation of a program without loops.
    """
    calls: dict[str, int] = {}
    for name in _DISPATCH_SITE.findall(flow_text):
        calls[name] = calls.get(name, 0) + 1
    return calls


def dispatch_content_key(source: str) -> str:
    r"""What two backends' executable sources of one computation share.

    The sources IREE dumps for llvm-cpu, CUDA and ROCm differ in the
    ``hal.executable.variant`` line (its name and target attributes) and,
    where dispatch formation numbers dispatches differently, in the
    ``..._dispatch_N`` part of symbol names. The key drops both and hashes
    the rest, so equal keys mean the same dispatch body.

    Examples
    --------
    >>> cuda = (
    ...     "hal.executable public @main_dispatch_3 {\n"
    ...     '  hal.executable.variant public @cuda_nvptx_fb target(<"cuda">) {\n'
    ...     "  func.func @main_dispatch_3_matmul_4x4x4_f32() {}"
    ... )
    >>> cpu = (
    ...     "hal.executable public @main_dispatch_5 {\n"
    ...     '  hal.executable.variant public @embedded_elf_x86_64 target(<"llvm-cpu">) {\n'
    ...     "  func.func @main_dispatch_5_matmul_4x4x4_f32() {}"
    ... )
    >>> dispatch_content_key(cuda) == dispatch_content_key(cpu)
    True
    >>> dispatch_content_key(cuda.replace("4x4x4", "8x4x4")) == dispatch_content_key(cpu)
    False
    """
    text = _VARIANT.sub("hal.executable.variant", source)
    text = _DISPATCH_NUMBER.sub("dispatch", text)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _base_flags(backend: str, input_level: str) -> list[str]:
    """The input-type and target flags of every compile, both checked."""
    if backend not in BACKEND_FLAGS:
        raise ValueError(
            f"unknown backend {backend!r}; choose from {list(BACKEND_FLAGS)}"
        )
    if input_level not in INPUT_TYPES:
        raise ValueError(
            f"unknown input level {input_level!r}; choose from {list(INPUT_TYPES)}"
        )
    return [f"--iree-input-type={INPUT_TYPES[input_level]}", *BACKEND_FLAGS[backend]]


def compile_phase(
    source: str | Path,
    backend: str,
    phase: str,
    out_dir: str | Path,
    *,
    input_level: str = "linalg",
    timeout: float = 600.0,
    dump_sources: bool = False,
) -> tuple[str, list[str], dict[str, str]]:
    """Compile for one backend up to a phase and return that phase's IR.

    Parameters
    ----------
    source : path
        The MLIR text file.
    backend : str
        A key of :data:`BACKEND_FLAGS`.
    phase : str
        An ``iree-compile --compile-to`` phase: ``flow`` (dispatch sites),
        ``executable-sources`` (each backend's dispatch formation),
        ``executable-targets`` (after codegen, before serialization: the
        exports' ``workgroup_size`` and ``workgroup_local_memory``).
    out_dir : path
        Folder for the output (created).
    input_level : str, default "linalg"
        A key of :data:`INPUT_TYPES`.
    timeout : float, default 600
    dump_sources : bool, default False
        Also dump each executable's source (as :func:`compile_mlir` does).

    Returns
    -------
    text : str
        The IR at ``phase``, with large constants elided.
    flags : list of str
        The exact flags.
    sources : dict
        Export name -> executable source, when ``dump_sources``.

    Raises
    ------
    ToolError
        If ``iree-compile`` is missing, fails or times out.
    ValueError
        For an unknown backend or input level.
    """
    out = Path(out_dir)
    flags = [
        *_base_flags(backend, input_level),
        f"--compile-to={phase}",
        *_ELIDE,
        *(("--iree-hal-dump-executable-sources-to=sources",) if dump_sources else ()),
    ]
    target = out / f"{phase}.mlir"
    args = [
        find_tools().require("iree_compile"),
        os.path.relpath(source, out),
        *flags,
        "-o",
        target.name,
    ]
    out.mkdir(parents=True, exist_ok=True)
    run_tool(args, timeout=timeout, cwd=out)
    sources = _outputs(out, backend, flags, 0.0).sources if dump_sources else {}
    return target.read_text(encoding="utf-8"), flags, sources


def iree_dispatches(
    text: str,
    *,
    backend: str = "llvm-cpu",
    input_level: str = "linalg",
    timeout: float = 600.0,
) -> list[tuple[str, str, int]]:
    """IREE's own dispatches of a module, without code generation.

    Compiles up to ``executable-sources`` (dispatch formation, no codegen:
    seconds for a network) with the collector's flags and returns each
    executable's source, as the kernels dataset stores it, and how many
    dispatch sites run it. Weights the text leaves out (the dataset's stripped
    ``dense_resource`` blobs) are filled as the collector fills them
    (:func:`~._resources.fill_missing_resources`).

    Parameters
    ----------
    text : str
        MLIR text of the module.
    backend : str, default "llvm-cpu"
        A key of :data:`BACKEND_FLAGS`.
    input_level : str, default "linalg"
        A key of :data:`INPUT_TYPES`.
    timeout : float, default 600
        Seconds before ``iree-compile`` is stopped.

    Returns
    -------
    list of (str, str, int)
        Export name, executable source and number of dispatch sites, in
        IREE's dispatch order.

    Raises
    ------
    ToolError
        If ``iree-compile`` is not installed, fails or times out.
    """
    with tempfile.TemporaryDirectory(prefix="mlircost-dispatches-") as tmp:
        source = Path(tmp) / "input.mlir"
        source.write_text(fill_missing_resources(text), encoding="utf-8")
        ir, _, sources = compile_phase(
            source,
            backend,
            "executable-sources",
            Path(tmp) / "out",
            input_level=input_level,
            timeout=timeout,
            dump_sources=True,
        )
    calls = Counter(_STREAM_SITE.findall(ir))
    order = {name: i for i, name in enumerate(calls)}
    names = sorted(sources, key=lambda name: order.get(name, len(order)))
    return [(name, sources[name], calls.get(name, 1)) for name in names]


def compile_mlir(
    source: str | Path,
    backend: str,
    out_dir: str | Path,
    *,
    input_level: str = "linalg",
    timeout: float = 600.0,
    reuse: bool = False,
    split_at: str | None = None,
) -> Compiled:
    """Compile an MLIR file for one backend.

    Parameters
    ----------
    source : path
        The MLIR text file.
    backend : str
        A key of :data:`BACKEND_FLAGS`.
    out_dir : path
        Folder for the module and the dumps (created).
    input_level : str, default "linalg"
        A key of :data:`INPUT_TYPES`.
    timeout : float, default 600
        Seconds before ``iree-compile`` is killed.
    reuse : bool, default False
        Return the outputs already in ``out_dir`` when they come from a
        finished compile of the same text, with the same ``iree-compile`` and
        flags (its manifest ``compile.json`` says so), instead of compiling
        again. IREE's output does not depend on the folder, so they are the
        bytes a new compile would give.
    split_at : str, optional
        An ``iree-compile`` phase (``flow``, ``executable-targets`` ...):
        compile in two runs, ``--compile-to`` it and then ``--compile-from``
        it, and keep the IR in between (``Compiled.kept``) for readers of that
        phase, instead of a third compile up to it. The intermediate file has
        the source's name, so the module's name, the dumped sources and
        binaries are byte for byte those of one run (the ``.vmfb`` differs in
        its debug locations only). Each run has ``timeout``.

    Returns
    -------
    Compiled

    Raises
    ------
    ToolError
        If ``iree-compile`` is missing, fails or times out.
    ValueError
        For an unknown backend or input level.
    """
    base = _base_flags(backend, input_level)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Only the ROCm measurement reads intermediates (its assembly's metadata).
    kinds = ("sources", "binaries", "intermediates" if backend == "rocm" else "")
    dumps = {name: out / name for name in kinds if name}
    flags = [
        *base,
        *(f"--iree-hal-dump-executable-{n}-to={n}" for n in dumps),
    ]
    vmfb = out / "module.vmfb"
    # Relative paths from inside ``out``: the module embeds the source and dump
    # paths (debug locations), and the same program must give the same bytes
    # whatever folder it is compiled in.
    args = [
        find_tools().require("iree_compile"),
        os.path.relpath(source, out),
        *flags,
        "-o",
        vmfb.name,
    ]
    manifest = out / _MANIFEST
    expected = {
        "iree_compile": args[0],
        "flags": flags,
        "source_sha256": hashlib.sha256(Path(source).read_bytes()).hexdigest(),
        "split_at": split_at,
    }
    # the IR kept between the two runs, named like the source (the module's name)
    kept = {split_at: out / split_at / Path(source).name} if split_at else {}
    if reuse:
        with contextlib.suppress(OSError, ValueError):
            done = json.loads(manifest.read_text(encoding="utf-8"))
            if (
                {k: done.get(k) for k in expected} == expected
                and vmfb.is_file()
                and all(path.is_file() for path in kept.values())
            ):
                return _outputs(
                    out, backend, flags, done.get("seconds", 0.0), True, kept
                )
    # Outputs of an earlier compile are not reusable once this one has started.
    manifest.unlink(missing_ok=True)
    if not kept:
        seconds = run_tool(args, timeout=timeout, cwd=out).seconds
    else:
        between = kept[split_at]
        between.parent.mkdir(exist_ok=True)
        to = [
            *args[:-2],
            f"--compile-to={split_at}",
            "-o",
            str(between.relative_to(out)),
        ]
        seconds = run_tool(to, timeout=timeout, cwd=out).seconds
        frm = [args[0], to[-1], *flags, f"--compile-from={split_at}", *args[-2:]]
        seconds += run_tool(frm, timeout=timeout, cwd=out).seconds
    manifest.write_text(json.dumps({**expected, "seconds": seconds}), "utf-8")
    return _outputs(out, backend, flags, seconds, kept=kept)


def _outputs(
    out: Path,
    backend: str,
    flags: list[str],
    seconds: float,
    reused: bool = False,
    kept: dict[str, Path] | None = None,
) -> Compiled:
    """The module and dumps a compile left in ``out``, and the IR it ``kept``."""
    sources = {}
    for path in sorted(out.joinpath("sources").glob("*.mlir")):
        text = path.read_text(encoding="utf-8")
        for name in export_names(text):
            sources[name] = text
    return Compiled(
        backend=backend,
        vmfb=out / "module.vmfb",
        sources=sources,
        binaries=sorted(p for p in out.joinpath("binaries").glob("*") if p.is_file()),
        intermediates=sorted(
            p for p in out.joinpath("intermediates").glob("*") if p.is_file()
        ),
        flags=flags,
        seconds=seconds,
        reused=reused,
        kept=kept or {},
    )
