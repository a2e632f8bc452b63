"""Variants: one dispatch compiled under candidate codegen configurations.

For a kernel record (an IREE dispatch) and a backend, :func:`configure`
asks ``iree-compile`` for the configured executable (the dispatch after
strategy selection, ``--iree-hal-dump-executable-configurations-to``);
:func:`candidate_configs` derives candidate configurations from the
compiler's own choice; :func:`measure_candidate` compiles each edited text
and measures it with the functions the collector uses for kernels. A
candidate the compiler rejects is recorded with ``<hardware>.compiles = 0``
and the compiler's message.

Every backend (``cuda`` for ``nvidia_sm80`` / ``nvidia_sm90``, ``rocm`` for
``amd_gfx942``, ``llvm-cpu`` for ``cpu_x86_64_v3``) compiles the one
executable alone (``--compile-mode=hal-executable``): the kernel record's
source is retargeted by swapping its ``hal.executable.variant`` target for
the backend's, which reproduces the whole-program compile of that dispatch.
``llvm-cpu`` builds it as a system shared library; callgrind counts one
dispatch of it run by ``iree-benchmark-executable``
(:func:`~._measure_cpu.count_dispatch_instructions`) with the workgroup
count the translation gives the export, bindings sized from the
executable's ``hal.interface.binding.subspan`` ops at their offsets and the
push constants the program passes (the first value of each one's
``util.assume.int``), which gives the kernel record's per-call label
exactly: no program run is needed.

Candidates (:func:`candidate_configs`), spread evenly in tile volume among
the valid combinations, scale the compiler's tile sizes by
powers of two (1/4 to 4, so the divisibility or padding of its choice
carries over), keep thread tiles dividing workgroup tiles, and recompute the
workgroup size the pipeline expects: ``prod(workgroup / thread)`` threads
for ``TileAndFuse`` thread tiles, ``subgroups x subgroup_size`` for MMA
(``subgroups = prod(workgroup / (subgroup x intrinsic))``), capped at 1024.
Loop bounds are not read: a tile past a loop's bound is padded by the
compiler or rejected, and either way recorded. ``rocm`` groups add up to
``k - 1`` candidates past a gfx942 wave's register budget
(:func:`spill_prone_configs`: 256-1,024 threads, thread and subgroup tiles
up to 16x a loop, wider ``VectorDistribute`` vectors), which the ordinary
ones rarely reach; candidates whose records a dataset holds already are not
measured again. IREE's own tuner
(``amdsharktuner`` 3.9.0) does not import with IREE 3.13 (its
``register_attribute_builder`` patch and ``DispatchLoweringPassPipeline``
are gone), so this small generator follows its ideas instead: MMA-aligned
tiles, subgroup counts, thread budgets.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..datasets import canonical_json, iter_dataset
from ..datasets._schema import complete_record, record_source, variant_record_id
from ..mlir import element_bits
from ..mlir._iree_config import CodegenConfig, mma_shape, read_config, write_config
from ._compile import _ELIDE, BACKEND_FLAGS, INPUT_TYPES, _outputs
from ._measure import (
    DEFAULT_TIMEOUTS,
    _measure_amd,
    _measure_nvidia,
    _Session,
)
from ._measure_cpu import (
    _split_top_level,
    count_dispatch_instructions,
    elf_function_sizes,
)
from ._measure_gpu import workgroup_memory
from ._resources import fill_missing_resources, strip_resources
from ._toolchain import ToolError, find_tools, host_cpu, run_tool, toolchain_versions

__all__ = [
    "VARIANT_BACKENDS",
    "VARIANT_TIMEOUTS",
    "CandidateResult",
    "candidate_configs",
    "collect_dataset_variants",
    "collect_variants",
    "configure",
    "dispatch_buffers",
    "export_variant_gpu_batch",
    "measure_candidate",
    "pick_dispatches",
    "retarget",
    "spill_prone_configs",
    "workgroup_count",
]

#: Backend -> the hardware its candidates are measured for.
VARIANT_BACKENDS = {
    "cuda": ("nvidia_sm80", "nvidia_sm90"),
    "rocm": ("amd_gfx942",),
    "llvm-cpu": ("cpu_x86_64_v3",),
}
# Backends whose groups add spill-prone candidates (spill_prone_configs).
_SPILL_PRONE = ("rocm",)
# The BACKEND_FLAGS entry each variant backend compiles with.
_FLAGS_OF = {"cuda": "cuda", "rocm": "rocm", "llvm-cpu": "llvm-cpu-system"}
_VARIANT = re.compile(
    r"^(\s*hal\.executable\.variant\s+public\s+@\S+\s+target\(.*\)\s*\{)$", re.M
)
_EXECUTABLE = re.compile(r"hal\.executable\s+(?:public\s+|private\s+)?@([\w$.-]+)")
_FACTORS = (0.25, 0.5, 1, 2, 4)
_MAX_THREADS = 1024
_SERIALIZE = "iree-hal-serialize-target-executables"
# After it, an export's workgroup count region returns constants.
_TRANSLATE = "iree-hal-translate-all-executables"
#: Stage timeouts of variant collection: shorter than a program's, since a
#: candidate that makes ptxas run for minutes is rare and a timeout is
#: recorded as its failure all the same.
VARIANT_TIMEOUTS = {"compile": 120.0, "ptxas": 30.0, "callgrind": 300.0}
# Valid candidates drawn per candidate kept, before spreading them by volume.
_POOL = 20
_CPU_CHAIN = ("distribution", "cache_parallel", "vector_common_parallel")
_REFERENCE = """func.func @main(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %0 = arith.addf %a, %b : tensor<4xf32>
  return %0 : tensor<4xf32>
}
"""


def _compile_args(backend: str) -> list[str]:
    return [find_tools().require("iree_compile"), *BACKEND_FLAGS[_FLAGS_OF[backend]]]


@functools.cache
def _variant_line(backend: str, timeout: float = 120.0) -> str:
    """The ``hal.executable.variant ... target(...)`` line IREE writes for a
    backend, from the compile of a one-op program."""
    with tempfile.TemporaryDirectory(prefix="mlircost-variant-") as tmp:
        Path(tmp, "ref.mlir").write_text(_REFERENCE, encoding="utf-8")
        run_tool(
            [
                *_compile_args(backend),
                "ref.mlir",
                "--iree-hal-dump-executable-sources-to=sources",
                "-o",
                "ref.vmfb",
            ],
            timeout=timeout,
            cwd=tmp,
        )
        text = next(Path(tmp, "sources").glob("*.mlir")).read_text(encoding="utf-8")
    m = _VARIANT.search(text)
    if m is None:
        raise ToolError(f"no executable variant in the {backend} reference source")
    return m.group(1).strip()


def retarget(source: str, backend: str) -> str:
    """An executable source with its variant target swapped for ``backend``'s.

    Raises
    ------
    ValueError
        If ``source`` has no ``hal.executable.variant`` line.
    """
    if _VARIANT.search(source) is None:
        raise ValueError("not an executable source: no hal.executable.variant line")
    line = _variant_line(backend)
    return _VARIANT.sub(
        lambda m: m.group(1)[: -len(m.group(1).lstrip())] + line, source, count=1
    )


def _executable_name(text: str) -> str:
    m = _EXECUTABLE.search(text)
    if m is None:
        raise ValueError("no hal.executable in the text")
    return m.group(1)


def configure(
    source: str,
    backend: str,
    workdir: str | Path,
    *,
    timeout: float = 600.0,
) -> str:
    """The configured executable of one dispatch, as the compiler chose it.

    Parameters
    ----------
    source : str
        The dispatch's executable source (a kernel record's text).
    backend : {"cuda", "rocm", "llvm-cpu"}
    workdir : path
        Folder for the compile (created).
    timeout : float, default 600
        Seconds allowed for ``iree-compile``.

    Returns
    -------
    str

    Raises
    ------
    ToolError
        If ``iree-compile`` fails.
    ValueError
        For an unknown backend.
    """
    _check_backend(backend)
    out = Path(workdir)
    out.mkdir(parents=True, exist_ok=True)
    name = _executable_name(source)
    text = fill_missing_resources(retarget(source, backend))
    (out / "source.mlir").write_text(text, encoding="utf-8")
    args = ["--compile-mode=hal-executable", "source.mlir"]
    error = None
    try:
        run_tool(
            [
                *_compile_args(backend),
                *args,
                "--compile-to=executable-configurations",
                "--iree-hal-dump-executable-configurations-to=configured",
                "-o",
                os.devnull,
            ],
            timeout=timeout,
            cwd=out,
        )
    except ToolError as exc:
        # The hal-executable mode translates on past the dump; a failure
        # there is the default candidate's to record, not the configuration's.
        error = exc
    for path in sorted((out / "configured").glob("*.mlir")):
        text = path.read_text(encoding="utf-8")
        if _executable_name(text) == name:
            return strip_resources(text)
    raise error or ToolError(f"iree-compile dumped no configuration of @{name}")


def _check_backend(backend: str) -> None:
    if backend not in VARIANT_BACKENDS:
        raise ValueError(
            f"unknown variant backend {backend!r}; choose from {list(VARIANT_BACKENDS)}"
        )


# -- candidate generation ---------------------------------------------------


def _scaled(value: int, lo: int = 1) -> list[int]:
    """``value`` times 1/4 .. 4, integers >= ``lo``."""
    out = {int(value * f) for f in _FACTORS if value * f == int(value * f)}
    return sorted(v for v in out if v >= lo)


def _mma_knobs(config: CodegenConfig) -> tuple[list, callable] | None:
    """Choices and a builder for MMA configs (workgroup / subgroup / reduction)."""
    shape = mma_shape(config.mma_kind)
    wg, sg = config.levels.get("workgroup"), config.levels.get("subgroup")
    red = config.levels.get("reduction")
    if shape is None or wg is None or sg is None or red is None:
        return None
    dims = [d for d, v in enumerate(sg) if v > 0]
    kdims = [d for d, v in enumerate(red) if v > 0]
    if len(dims) != 2 or len(kdims) != 1:
        return None
    intrinsic = dict(zip(dims, shape[:2], strict=True))
    choices = [_scaled(wg[d], intrinsic[d]) for d in dims]
    choices += [_scaled(sg[d]) for d in dims]
    choices.append(_scaled(red[kdims[0]]))

    def build(values: tuple[int, ...]) -> CodegenConfig | None:
        wgs, sgs, k = values[:2], values[2:4], values[4]
        counts = []
        for d, w, s in zip(dims, wgs, sgs, strict=True):
            if w % (s * intrinsic[d]):
                return None
            counts.append(w // (s * intrinsic[d]))
        threads = math.prod(counts) * config.subgroup_size
        if not config.subgroup_size <= threads <= _MAX_THREADS:
            return None
        levels = {name: list(v) for name, v in config.levels.items()}
        for d, w, s in zip(dims, wgs, sgs, strict=True):
            levels["workgroup"][d], levels["subgroup"][d] = w, s
        levels["reduction"][kdims[0]] = k
        if "padding" in levels:
            for d, w in zip(dims, wgs, strict=True):
                levels["padding"][d] = w
            levels["padding"][kdims[0]] = k * shape[2]
        return _replace(config, levels, [threads, 1, 1])

    return choices, build


def _thread_loops(config: CodegenConfig) -> tuple | None:
    """Workgroup and thread tiles, the loops both tile, the reduction tiles
    and the loops they tile, of a thread-tiled GPU config (else None)."""
    wg, th = config.levels.get("workgroup"), config.levels.get("thread")
    if wg is None or th is None or len(wg) != len(th):
        return None
    dims = [d for d, v in enumerate(th) if v > 0 and wg[d] > 0]
    red = config.levels.get("reduction", [])
    kdims = [d for d, v in enumerate(red) if v > 0]
    return (wg, th, dims, red, kdims) if dims else None


def _thread_knobs(config: CodegenConfig) -> tuple[list, callable] | None:
    """Choices and a builder for thread-tiled GPU configs."""
    loops = _thread_loops(config)
    if loops is None:
        return None
    wg, th, dims, red, kdims = loops
    choices = [_scaled(wg[d]) for d in dims] + [_scaled(th[d]) for d in dims]
    choices += [_scaled(red[d]) for d in kdims]
    n = len(dims)

    def build(values: tuple[int, ...]) -> CodegenConfig | None:
        wgs, ths, ks = values[:n], values[n : 2 * n], values[2 * n :]
        if any(w % t for w, t in zip(wgs, ths, strict=True)):
            return None
        threads = math.prod(w // t for w, t in zip(wgs, ths, strict=True))
        size = max(config.subgroup_size, 1)
        if threads % size or not size <= threads <= _MAX_THREADS:
            return None
        levels = {name: list(v) for name, v in config.levels.items()}
        for d, w, t in zip(dims, wgs, ths, strict=True):
            levels["workgroup"][d], levels["thread"][d] = w, t
        for d, k in zip(kdims, ks, strict=True):
            levels["reduction"][d] = k
        return _replace(config, levels, [threads, 1, 1])

    return choices, build


def _generic_knobs(config: CodegenConfig) -> tuple[list, callable]:
    """Every non-zero tile of every level scaled; the workgroup size kept."""
    slots = [
        (name, d)
        for name, sizes in config.levels.items()
        if name not in ("padding", "promote_operands")
        for d, v in enumerate(sizes)
        if v > 0
    ]
    choices = [_scaled(config.levels[name][d]) for name, d in slots]

    def build(values: tuple[int, ...]) -> CodegenConfig | None:
        levels = {name: list(v) for name, v in config.levels.items()}
        for (name, d), v in zip(slots, values, strict=True):
            levels[name][d] = v
        # Each CPU level tiles the one above it: inner tiles divide outer ones.
        chain = [levels[n] for n in _CPU_CHAIN if n in levels]
        for outer, inner in itertools.pairwise(chain):
            for o, i in zip(outer, inner, strict=False):
                if o and i and o % i:
                    return None
        return _replace(config, levels, list(config.workgroup_size))

    return choices, build


# -- candidates past the gfx942 register budget ------------------------------

#: Factors of the spill-prone candidates' per-thread tiles and subgroup
#: counts (:func:`spill_prone_configs`): past the 4x of :data:`_FACTORS`.
_WIDE = (1, 2, 4, 8, 16)
#: The most a spill-prone candidate scales a thread's state, over all loops.
_MAX_WIDE_SCALE = 64
#: The most shared memory a spill-prone matmul MMA candidate's promoted
#: operands may take (estimated): gfx942 has 64 KiB a workgroup.
_MAX_SHARED_BYTES = 48 * 1024
#: The most a spill-prone MMA candidate of more than two loops grows the
#: product of its workgroup tiles (an upper bound of either operand's
#: growth) over the reduction tile's shrinking: 16x went past 64 KiB on a
#: four-loop dispatch whose compiler's choice takes 4 KiB.
_MAX_SHARED_PRODUCT = 8
#: The most elements of a spill-prone ``VectorDistribute`` thread a pass.
_MAX_VECTOR = 64
_BASIS = re.compile(r"^(lane|subgroup)_basis\s*=\s*\[\[([^\]]*)\],\s*\[([^\]]*)\]\]$")


def _vgpr_budget(threads: int) -> int:
    """VGPRs a gfx942 lane may hold: a compute unit's four SIMDs split their
    512 among the waves (of 64) each one runs, in granules of 8."""
    waves_per_simd = math.ceil(threads / 64 / 4)
    return 512 // waves_per_simd // 8 * 8


def _wide_enough(threads: int, scale: int, state: float | None = None) -> bool:
    """A spill-prone candidate: 256-1,024 threads and a thread's state scaled
    by 2 to :data:`_MAX_WIDE_SCALE`, with its estimate (``state``, in 32-bit
    registers) from half to twice the wave's VGPR budget; without an
    estimate, 512 threads or more, or 256 with the state scaled 8x or more."""
    if not 256 <= threads <= _MAX_THREADS or not 2 <= scale <= _MAX_WIDE_SCALE:
        return False
    if state is None:
        return threads >= 512 or scale >= 8
    budget = _vgpr_budget(threads)
    return budget / 2 <= state <= 2 * budget


def _wide_mma_knobs(config: CodegenConfig) -> tuple[list, callable] | None:
    """Subgroup tiles times ``f`` and subgroup counts times ``g`` per loop."""
    wg, sg = config.levels.get("workgroup"), config.levels.get("subgroup")
    red = config.levels.get("reduction", [])
    if not config.mma_kind or wg is None or sg is None or len(wg) != len(sg):
        return None
    dims = [d for d, v in enumerate(sg) if v > 0 and wg[d] > 0]
    kdims = [d for d, v in enumerate(red) if v > 0]
    shape = mma_shape(config.mma_kind)
    if not dims or not config.workgroup_size or shape is None:
        return None
    accumulators = shape[0] * shape[1] / max(config.subgroup_size, 1)
    suffix = config.mma_kind.rsplit("_", 1)[-1]
    operand_bytes = (element_bits(suffix[:1].lower() + suffix[1:]) or 32) / 8
    n = len(dims)
    choices = [_WIDE] * (2 * n) + [
        [v for v in _scaled(red[d]) if v <= red[d]] for d in kdims
    ]

    def build(values: tuple[int, ...]) -> CodegenConfig | None:
        fs, gs, ks = values[:n], values[n : 2 * n], values[2 * n :]
        threads = math.prod(config.workgroup_size) * math.prod(gs)
        # The operands promoted to shared memory hold the reduction tile
        # times the workgroup tiles of their loops: a matmul's K x (M + N)
        # elements of the intrinsic's input type; with more loops (batches,
        # a convolution's output rows; which of them an operand spans is
        # not read) at most the product of the tiles' growths.
        scales = [f * g for f, g in zip(fs, gs, strict=True)]
        if n == 2 and len(kdims) == 1:
            tiles = sum(wg[d] * s for d, s in zip(dims, scales, strict=True))
            if ks[0] * shape[2] * tiles * operand_bytes > _MAX_SHARED_BYTES:
                return None
        else:
            shrunk = math.prod(k / red[d] for d, k in zip(kdims, ks, strict=True))
            if math.prod(scales) * shrunk > _MAX_SHARED_PRODUCT:
                return None
        # A lane's accumulators (its share of the subgroup's intrinsic tiles)
        # estimate a matmul's registers; past two loops, the spills seen are
        # of scalar registers (addressing), and no estimate is made.
        tiles = math.prod(sg[d] * f for d, f in zip(dims, fs, strict=True))
        state = tiles * accumulators if n == 2 else None
        if not _wide_enough(threads, math.prod(fs), state):
            return None
        levels = {name: list(v) for name, v in config.levels.items()}
        for d, f, g in zip(dims, fs, gs, strict=True):
            levels["workgroup"][d], levels["subgroup"][d] = wg[d] * f * g, sg[d] * f
            if "padding" in levels:
                levels["padding"][d] = levels["workgroup"][d]
        for d, k in zip(kdims, ks, strict=True):
            levels["reduction"][d] = k
            if "padding" in levels:
                levels["padding"][d] = levels["padding"][d] * k // red[d]
        return _replace(config, levels, [threads, 1, 1])

    return choices, build


def _wide_thread_knobs(config: CodegenConfig) -> tuple[list, callable] | None:
    """Thread tiles times ``f`` and threads along each loop times ``g``."""
    loops = _thread_loops(config)
    if config.mma_kind or "partial_reduction" in config.levels or loops is None:
        return None
    wg, th, dims, red, kdims = loops
    n = len(dims)
    choices = [_WIDE] * (2 * n) + [_scaled(red[d]) for d in kdims]
    size = max(config.subgroup_size, 1)

    def build(values: tuple[int, ...]) -> CodegenConfig | None:
        fs, gs, ks = values[:n], values[n : 2 * n], values[2 * n :]
        threads = math.prod(wg[d] // th[d] * g for d, g in zip(dims, gs, strict=True))
        tile = math.prod(th[d] * f for d, f in zip(dims, fs, strict=True))
        if threads % size or not _wide_enough(threads, math.prod(fs), tile):
            return None
        levels = {name: list(v) for name, v in config.levels.items()}
        for d, f, g in zip(dims, fs, gs, strict=True):
            levels["workgroup"][d], levels["thread"][d] = wg[d] * f * g, th[d] * f
        for d, k in zip(kdims, ks, strict=True):
            levels["reduction"][d] = k
        return _replace(config, levels, [threads, 1, 1])

    return choices, build


def _wide_vector_knobs(config: CodegenConfig) -> tuple[list, callable] | None:
    """A ``VectorDistribute`` reduction's thread vector times ``f``, its
    subgroups times ``g`` and its partial reduction times ``f * g * m``."""
    th = config.levels.get("thread")
    partial = config.levels.get("partial_reduction")
    bases = {}
    for i, flag in enumerate(config.flags):
        m = _BASIS.match(flag)
        if m:
            bases[m.group(1)] = (i, _int_list(m.group(2)), _int_list(m.group(3)))
    if (
        th is None
        or partial is None
        or "subgroup" not in bases
        or not config.workgroup_size
    ):
        return None
    dims = [d for d, v in enumerate(th) if v > 0 and partial[d] > 0]
    index, counts, mapping = bases["subgroup"]
    if len(dims) != 1 or dims[0] not in mapping:
        return None
    (d,) = dims
    slot = mapping.index(d)

    def build(values: tuple[int, ...]) -> CodegenConfig | None:
        f, g, m = values
        threads = math.prod(config.workgroup_size) * g
        # The registers of a reduction pass are not its vector alone (a
        # 16-wide thread vector at 256 threads takes all 512 VGPRs and
        # spills): no estimate, but 512 threads or 8x the vector.
        if th[d] * f * m > _MAX_VECTOR or not _wide_enough(threads, f * m):
            return None
        levels = {name: list(v) for name, v in config.levels.items()}
        levels["thread"][d] = th[d] * f
        levels["partial_reduction"][d] = partial[d] * f * g * m
        grown = [c * g if i == slot else c for i, c in enumerate(counts)]
        flags = list(config.flags)
        flags[index] = (
            f"subgroup_basis = [[{', '.join(map(str, grown))}], "
            f"[{', '.join(map(str, mapping))}]]"
        )
        return dataclasses.replace(
            _replace(config, levels, [threads, 1, 1]), flags=flags
        )

    return [_WIDE, _WIDE, (1, 2, 4)], build


def _int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _replace(config: CodegenConfig, levels: dict, workgroup_size: list[int]):
    return CodegenConfig(
        backend=config.backend,
        pipeline=config.pipeline,
        levels=levels,
        workgroup_size=workgroup_size,
        subgroup_size=config.subgroup_size,
        mma_kind=config.mma_kind,
        flags=list(config.flags),
    )


def candidate_configs(
    config: CodegenConfig, k: int, *, seed: int = 0, tries: int = 4000
) -> list[CodegenConfig]:
    """Up to ``k`` distinct configurations, the compiler's own first.

    Parameters
    ----------
    config : CodegenConfig
        The compiler's choice (:func:`~mlircost_classic.mlir.read_config`).
    k : int
        Candidates wanted, the default included.
    seed : int, default 0
        Seed of the sampling among valid combinations.
    tries : int, default 4000
        Random combinations drawn when there are too many to list.

    Returns
    -------
    list of CodegenConfig
        Fewer than ``k`` when the rules allow fewer.

    Examples
    --------
    >>> c = CodegenConfig("gpu", "TileAndFuse", {"workgroup": [32, 128],
    ...     "thread": [1, 16], "reduction": [0, 0]}, [32, 8, 1], 32)
    >>> [x.workgroup_size[0] for x in candidate_configs(c, 3)][0]
    32
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    choices, build = (
        _mma_knobs(config) or _thread_knobs(config) or _generic_knobs(config)
    )
    seen = {canonical_json(config.to_dict())}
    return [config, *_spread(choices, build, k - 1, seed, tries, seen, _POOL * k)]


def spill_prone_configs(
    config: CodegenConfig,
    n: int,
    *,
    seed: int = 0,
    tries: int = 4000,
    exclude: Iterable[CodegenConfig] = (),
) -> list[CodegenConfig]:
    """Up to ``n`` candidates past a gfx942 wave's register budget.

    The waves of a workgroup share a compute unit's four SIMDs, whose 512
    VGPRs a lane are split among the waves each SIMD holds: 512 VGPRs at up
    to 256 threads, 256 at 512, 168 at 576, 128 at 1,024. The candidates of
    :func:`candidate_configs` rarely reach that budget (their tiles scale by
    at most 4x and keep the workgroup near the compiler's size, 64-256
    threads); these scale the per-thread state by up to :data:`_WIDE` per
    loop (``prod`` 2x to 64x) and the workgroup to 256-1,024 threads, so
    that an estimate of a thread's registers is half to twice the budget
    (without one, at least 512 threads, or 256 with the state scaled 8x or
    more):

    * MMA configs (any number of subgroup loops, four-loop convolutions
      included): each loop's subgroup tile times ``f``, its subgroup count
      times ``g`` (the workgroup tile times ``f * g``), so the threads are
      the compiler's times ``prod(g)`` whichever loops carry the intrinsic;
      reduction tiles at most the compiler's, so that the operands promoted
      to shared memory (a matmul's reduction tile times the sum of its
      workgroup tiles) stay within 48 KiB (past two loops, the product of
      the tiles' growths within 8x); the estimate: a matmul's accumulators
      a lane (none past two loops);
    * thread-tiled ``TileAndFuse`` configs: the thread tile times ``f``,
      the threads along the loop times ``g``, the reduction tile 1/4 to 4x;
      the estimate: the thread tile's elements;
    * ``VectorDistribute`` reductions: the thread vector times ``f``, the
      subgroups along the reduced loop (``subgroup_basis``) times ``g``, the
      partial reduction times ``f * g * m`` (``m`` thread vectors a pass),
      at most 64 elements a thread and pass; no estimate.

    Other configs (``Distribute``, CPU) give none.

    Parameters
    ----------
    config : CodegenConfig
        The compiler's choice.
    n : int
        Candidates wanted.
    seed : int, default 0
    tries : int, default 4000
        Random combinations drawn when there are too many to list.
    exclude : iterable of CodegenConfig
        Candidates already chosen (:func:`candidate_configs`'), not repeated.

    Returns
    -------
    list of CodegenConfig
        Spread evenly in tile volume, lightest first.

    Examples
    --------
    >>> c = CodegenConfig("gpu", "TileAndFuse", {"workgroup": [64, 64, 0],
    ...     "subgroup": [2, 2, 0], "reduction": [0, 0, 8]}, [256, 1, 1], 64,
    ...     "MFMA_F32_16x16x4_F32")
    >>> [(x.workgroup_size[0], x.levels["subgroup"]) for x in spill_prone_configs(c, 3)]
    [(1024, [8, 2, 0]), (512, [32, 2, 0]), (256, [16, 16, 0])]
    """
    knobs = _wide_mma_knobs(config) or _wide_thread_knobs(config)
    knobs = knobs or _wide_vector_knobs(config)
    if knobs is None or n < 1:
        return []
    seen = {canonical_json(c.to_dict()) for c in [config, *exclude]}
    return _spread(*knobs, n, seed, tries, seen, _POOL * (n + 1))


def _spread(
    choices: list,
    build: callable,
    n: int,
    seed: int,
    tries: int,
    seen: set[str],
    pool_size: int,
) -> list[CodegenConfig]:
    """``n`` distinct valid candidates, evenly spaced in tile volume among
    (up to ``pool_size``) valid combinations of ``choices`` in a seeded
    order; candidates whose ``canonical_json`` is in ``seen`` are left out."""
    rng = random.Random(seed)
    total = math.prod(len(c) for c in choices)
    if total <= tries:
        combos = list(itertools.product(*choices))
        rng.shuffle(combos)
    else:
        combos = [tuple(rng.choice(c) for c in choices) for _ in range(tries)]
    pool = []
    for combo in combos:
        if len(pool) >= pool_size:
            break
        candidate = build(combo)
        if candidate is None:
            continue
        key = canonical_json(candidate.to_dict())
        if key not in seen:
            seen.add(key)
            pool.append(candidate)
    # Evenly spaced in tile volume, so that a group spans light candidates
    # and ones heavy enough to spill.
    pool.sort(key=_volume)
    if len(pool) > n:
        picks = np.linspace(0, len(pool) - 1, n) if n > 0 else []
        pool = [pool[round(i)] for i in picks]
    return pool


def _volume(config: CodegenConfig) -> float:
    """Sum of log tile sizes over the levels (padding aside): how much work
    and state one thread, subgroup or vector step holds."""
    return sum(
        math.log(v)
        for name, sizes in config.levels.items()
        if name != "padding"
        for v in sizes
        if v > 0
    )


# -- measuring --------------------------------------------------------------


@dataclass
class CandidateResult:
    """What compiling and measuring one candidate gave.

    Attributes
    ----------
    targets : dict
        ``<hardware>.<metric>`` -> value, with ``<hardware>.compiles`` (1 or 0).
    failures : list of (str, str)
        ``(stage, message)`` per failed stage (``compile:nvidia_sm80``).
    seconds : dict
        Wall seconds per stage.
    commands : dict
        Stage -> flags or command, without folders.
    """

    targets: dict[str, float]
    failures: list[tuple[str, str]]
    seconds: dict[str, float]
    commands: dict[str, list[str]] = field(default_factory=dict)


def measure_candidate(
    text: str,
    backend: str,
    workdir: str | Path,
    *,
    timeouts: dict[str, float] | None = None,
    kernel: str | None = None,
) -> CandidateResult:
    """Compile a configured executable and measure it.

    Parameters
    ----------
    text : str
        The configured executable (possibly edited).
    backend : {"cuda", "rocm", "llvm-cpu"}
    workdir : path
        Folder for this candidate (created).
    timeouts : dict, optional
        Overrides of :data:`~._measure.DEFAULT_TIMEOUTS`.
    kernel : str, optional
        The dispatch (export) name whose CPU metrics are kept; needed for
        ``llvm-cpu``.

    Returns
    -------
    CandidateResult
    """
    _check_backend(backend)
    root = Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    hardware = list(VARIANT_BACKENDS[backend])
    session = _Session(root, {**DEFAULT_TIMEOUTS, **(timeouts or {})})
    flags_key = _FLAGS_OF[backend]
    dumps = ["binaries"] + (["intermediates"] if backend == "rocm" else [])
    if backend == "llvm-cpu" and kernel is None:
        raise ValueError("llvm-cpu candidates need the kernel name")
    (root / "candidate.mlir").write_text(fill_missing_resources(text), encoding="utf-8")
    args = ["--compile-mode=hal-executable", "candidate.mlir"]
    if backend == "cuda":
        # The dynamic shared memory IREE launches a kernel with is in no
        # PTX: it is the export's workgroup_local_memory after codegen,
        # printed here just before serialization.
        args += [f"--mlir-print-ir-before={_SERIALIZE}", *_ELIDE]
    elif backend == "llvm-cpu":
        args += [f"--mlir-print-ir-after={_TRANSLATE}", *_ELIDE]
    flags = [*args, *(f"--iree-hal-dump-executable-{d}-to={d}" for d in dumps)]
    compiled = translated = None
    with session.stage("compile", hardware, f"compile:{backend}"):
        run = run_tool(
            [*_compile_args(backend), *flags, "-o", "executable.bin"],
            timeout=session.timeouts["compile"],
            cwd=root,
        )
        compiled = _outputs(root, flags_key, flags, run.seconds)
        session.compiled[flags_key] = compiled
        session.commands[f"compile:{backend}"] = [*BACKEND_FLAGS[flags_key], *flags]
        if backend == "cuda":
            session.cuda_launch = workgroup_memory(run.stderr)
        translated = run.stderr
    targets = {f"{hw}.compiles": float(compiled is not None) for hw in hardware}
    if compiled is not None:
        if backend == "cuda":
            for hw in hardware:
                _measure_nvidia(session, hw, None, 0)
        elif backend == "rocm":
            _measure_amd(session, "amd_gfx942", None, 0)
        else:
            _measure_dispatch_cpu(
                session, text, root / "executable.bin", translated, kernel
            )
        targets.update(session.targets)
    return CandidateResult(
        targets=targets,
        failures=session.failures,
        seconds={k: round(v, 3) for k, v in session.seconds.items()},
        commands=session.commands,
    )


def _measure_dispatch_cpu(
    session: _Session, text: str, library: Path, translated: str, kernel: str
) -> None:
    """Code bytes and per-dispatch instructions of a standalone llvm-cpu build."""
    hw = "cpu_x86_64_v3"
    with session.stage("code_bytes", [hw], "code_bytes"):
        sizes = elf_function_sizes(library)
        if kernel not in sizes:
            raise ToolError(f"the executable has no function @{kernel}")
        session.targets[f"{hw}.code_bytes"] = sizes[kernel]
    with session.stage("callgrind", [hw], "callgrind"):
        bindings, constants = dispatch_buffers(text)
        count = count_dispatch_instructions(
            library,
            kernel,
            ordinal=_export_ordinal(text, kernel),
            workgroup_count=workgroup_count(translated, kernel),
            bindings=bindings,
            constants=constants,
            timeout=session.timeouts["callgrind"],
        )
        session.command("callgrind", count.args)
        session.targets[f"{hw}.instructions"] = count.kernels[kernel]


_SUBSPAN = re.compile(
    r"hal\.interface\.binding\.subspan\b.*?\bbinding\((\d+)\).*?\boffset\(([^)]*)\).*?:\s*"
    r"(?:!iree_tensor_ext\.dispatch\.tensor<\w+:tensor<([^>]*)>>"
    r"|memref<([^,>]*)(?:,\s*strided<\[([^\]]*)\])?)"
)
_CONSTANT_LOAD = re.compile(
    r"(%[\w#]+) = hal\.interface\.constant\.load\b.*?\bordinal\((\d+)\) : i32"
)
_ASSUME = re.compile(
    r"(%[\w]+)(?::\d+)? = util\.assume\.int\s+(.*?)\s*:\s*index\b", re.S
)


def _assumed_values(text: str) -> dict[str, int]:
    """SSA value -> the first value ``util.assume.int`` assumes for it.

    Both the assumed operand (``%6``) and the result (``%12#0``, or ``%12``
    for a single one) are keys; the first assumption is the first dispatch
    site's value.
    """
    values = {}
    for result, body in _ASSUME.findall(text):
        entries = _split_top_level(body)
        for i, entry in enumerate(entries):
            m = re.match(r"(%\w+).*?umin = (\d+)", entry, re.S)
            if m is None:
                continue
            key = f"{result}#{i}" if len(entries) > 1 else result
            values[key] = values[m.group(1)] = int(m.group(2))
    return values


def dispatch_buffers(text: str) -> tuple[list[int], list[int]]:
    """Binding sizes and push constants to run a dispatch executable alone.

    Parameters
    ----------
    text : str
        The executable's source (a kernel record's or a configured text).

    Returns
    -------
    bindings : list of int
        Bytes of each binding in order: the end of its furthest subspan
        (offset plus tensor bytes).
    constants : list of int
        One value per push constant: what the program passes at the first
        dispatch site, from ``util.assume.int``, else 0.

    Raises
    ------
    ToolError
        For a dynamic shape, an unknown element type or an offset whose value
        the text does not give.
    """
    assumed = _assumed_values(text)
    index = {
        n: int(v)
        for n, v in re.findall(r"(%\w+) = arith\.constant (\d+) : index", text)
    }
    casts = dict(re.findall(r"(%\w+) = arith\.index_castui (%\w+) : i32", text))
    loaded = {name: int(i) for name, i in _CONSTANT_LOAD.findall(text)}
    constants = [0] * (max(loaded.values()) + 1 if loaded else 0)
    for cast, source in casts.items():
        if source in loaded and cast in assumed:
            constants[loaded[source]] = assumed[cast]
    sizes: dict[int, int] = {}
    for binding, offset, tensor, memref, strides in _SUBSPAN.findall(text):
        *dims, element = (tensor or memref).split("x")
        steps = strides.replace(" ", "").split(",") if strides else []
        bits = element_bits(element)
        if bits is None:
            raise ToolError(f"cannot size a binding of element type {element}")
        if not all(d.isdigit() for d in [*dims, *steps]):
            raise ToolError(
                f"cannot size a binding of dynamic shape {tensor or memref}"
            )
        offset = offset.strip()
        start = assumed.get(offset, index.get(offset))
        if start is None:
            raise ToolError(f"the offset {offset} of binding {binding} is not known")
        shape = [int(d) for d in dims]
        # A strided memref reaches its last element's position, plus one.
        elements = (
            1 + sum((d - 1) * int(t) for d, t in zip(shape, steps, strict=True))
            if steps
            else math.prod(shape)
        )
        nbytes = elements * -(-bits // 8)
        sizes[int(binding)] = max(sizes.get(int(binding), 0), start + nbytes)
    return [sizes.get(i, 0) for i in range(max(sizes, default=-1) + 1)], constants


def _export_ordinal(text: str, name: str) -> int:
    m = re.search(
        rf"hal\.executable\.export\s+public\s+@{re.escape(name)}\s+ordinal\((\d+)\)",
        text,
    )
    if m is None:
        raise ToolError(f"no export @{name} in the executable")
    return int(m.group(1))


def workgroup_count(translated: str, name: str) -> list[int]:
    """The workgroup count of export ``name`` in an executable after translation.

    Parameters
    ----------
    translated : str
        IR printed after ``iree-hal-translate-all-executables``.
    name : str
        The export.

    Raises
    ------
    ToolError
        If the export's count region returns anything but constants (a count
        that depends on the program's workload).
    """
    m = re.search(
        rf"hal\.executable\.export\s+public\s+@{re.escape(name)}\b[^\n]*count\("
        r"[^\n]*\{\n(.*?)hal\.return ([^:]*):",
        translated,
        re.S,
    )
    if m is None:
        raise ToolError(f"no workgroup count region of @{name} after translation")
    values = dict(re.findall(r"(%\w+) = arith\.constant (\d+) : index", m.group(1)))
    counts = [values.get(v.strip()) for v in m.group(2).split(",")]
    if None in counts:
        raise ToolError(f"the workgroup count of @{name} is not constant")
    return [int(c) for c in counts]


# -- collection -------------------------------------------------------------


def _record(
    kernel: dict,
    backend: str,
    candidate: CodegenConfig,
    text: str,
    is_default: bool,
    result: CandidateResult,
    provenance: dict,
    seed: int,
) -> dict:
    hardware = list(VARIANT_BACKENDS[backend])
    measured = {k: v for k, v in result.targets.items() if not k.endswith(".compiles")}
    status = "ok" if not result.failures else "partial"
    return complete_record(
        {
            "kind": "variant",
            "key": f"{kernel['id']}:{backend}",
            "source": record_source(kernel),
            "family": kernel["family"],
            "params": kernel["params"],
            "name": kernel["name"],
            "dispatch_id": kernel["id"],
            "backend": backend,
            "is_default": is_default,
            "config": candidate.to_dict(),
            "ir": {"configured": text},
            "compiled_level": "configured",
            "targets": result.targets,
            "provenance": {
                **provenance,
                "hardware": hardware,
                "seed": seed,
                "commands": result.commands,
                "measured": sorted(measured),
            },
            "status": status,
            "failures": [{"stage": s, "message": m} for s, m in result.failures],
            "seconds": result.seconds,
        }
    )


def _done_keys(path: Path) -> set[str]:
    keys = set()
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                keys.add(json.loads(line)["key"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line: that group runs again
    return keys


def collect_variants(
    kernels: Iterable[dict],
    k: int,
    out_dir: str | Path,
    *,
    backends: Sequence[str] = ("cuda", "rocm"),
    seed: int = 0,
    timeouts: dict[str, float] | None = None,
    known: Container[str] = frozenset(),
    log=None,
) -> dict[str, int]:
    """Collect ``k`` candidates per dispatch and backend into ``variants.jsonl``.

    ``rocm`` groups add up to ``k - 1`` candidates past gfx942's register
    budget (:func:`spill_prone_configs`) to the ``k``.

    Each (dispatch, backend) group is written at once when all its
    candidates are measured, so a run stopped at any time resumes where it
    stopped (groups already in the file are skipped). A dispatch the
    compiler cannot configure is logged in ``failures.jsonl``.

    Parameters
    ----------
    kernels : iterable of dict
        Kernel records (``load``-ed from the dataset's kernel shards).
    k : int
        Candidates per group, the compiler's own choice included.
    out_dir : path
        Run folder (created).
    backends : sequence of str, default ("cuda", "rocm")
        Keys of :data:`VARIANT_BACKENDS`.
    seed : int, default 0
        Candidate sampling seed.
    timeouts : dict, optional
        Stage timeouts (:data:`~._measure.DEFAULT_TIMEOUTS` keys), over
        :data:`VARIANT_TIMEOUTS`.
    known : container of str, optional
        Ids of variant records measured already (a dataset's): candidates
        with these ids are not compiled again, and a group of only those
        writes no record.
    log : callable, optional
        Called with one line per finished group.

    Returns
    -------
    dict
        Counts: ``groups``, ``candidates``, ``skipped`` (already done),
        ``unconfigured``.
    """
    for backend in backends:
        _check_backend(backend)
    timeouts = {**VARIANT_TIMEOUTS, **(timeouts or {})}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "variants.jsonl"
    done = _done_keys(path)
    counts = {"groups": 0, "candidates": 0, "skipped": 0, "unconfigured": 0}
    provenance = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host_cpu": host_cpu(),
        "tools": toolchain_versions(),
        "generator": "mlircost_classic.collect._variants.candidate_configs",
        "k": k,
        "timeouts": timeouts,
    }
    for kernel in kernels:
        for backend in backends:
            key = f"{kernel['id']}:{backend}"
            if key in done:
                counts["skipped"] += 1
                continue
            start = time.perf_counter()
            records = _collect_group(
                kernel, backend, k, out, seed, timeouts, provenance, known
            )
            if records is None:
                counts["unconfigured"] += 1
                continue
            with path.open("a", encoding="utf-8") as f:
                f.write("".join(canonical_json(r) + "\n" for r in records))
                f.flush()
                os.fsync(f.fileno())
            done.add(key)
            counts["groups"] += 1
            counts["candidates"] += len(records)
            if log is not None:
                log(
                    f"{kernel['name']} {backend}: {len(records)} candidates in "
                    f"{time.perf_counter() - start:.1f} s"
                )
    return counts


def _collect_group(
    kernel: dict,
    backend: str,
    k: int,
    out: Path,
    seed: int,
    timeouts: dict[str, float] | None,
    provenance: dict,
    known: Container[str] = frozenset(),
) -> list[dict] | None:
    source = kernel["ir"]["dispatch"]
    limits = {**DEFAULT_TIMEOUTS, **(timeouts or {})}
    with tempfile.TemporaryDirectory(prefix="mlircost-variants-") as tmp:
        try:
            configured = configure(
                source,
                backend,
                Path(tmp) / "configure",
                timeout=limits["compile"],
            )
            default = read_config(configured)
        except (ToolError, ValueError, OSError) as exc:
            with (out / "failures.jsonl").open("a", encoding="utf-8") as f:
                f.write(
                    canonical_json(
                        {"id": kernel["id"], "backend": backend, "message": str(exc)}
                    )
                    + "\n"
                )
            return None
        candidates = candidate_configs(default, k, seed=seed)
        if backend in _SPILL_PRONE:
            candidates += spill_prone_configs(
                default, k - 1, seed=seed, exclude=candidates
            )
        hardware = VARIANT_BACKENDS[backend]
        records = []
        for i, candidate in enumerate(candidates):
            text = configured if i == 0 else write_config(configured, candidate)
            if variant_record_id(text, backend, hardware) in known:
                continue
            result = measure_candidate(
                text,
                backend,
                Path(tmp) / f"candidate-{i}",
                timeouts=timeouts,
                kernel=kernel["name"],
            )
            records.append(
                _record(
                    kernel, backend, candidate, text, i == 0, result, provenance, seed
                )
            )
    return records


def pick_dispatches(
    count: int,
    *,
    families: Sequence[str] | None = None,
    seed: int = 0,
    data_home: str | Path | None = None,
) -> list[dict]:
    """``count`` kernel records of the dataset, spread evenly over families.

    Families take turns (round robin, in name order), each yielding its
    successful kernels in a seeded random order, so that a prefix of the
    list covers as many families as it can.
    """
    by_family: dict[str, list[dict]] = {}
    for rec in iter_dataset("kernels", data_home):
        if rec.get("status") != "failed" and (
            families is None or rec["family"] in families
        ):
            by_family.setdefault(rec["family"], []).append(rec)
    rng = random.Random(seed)
    queues = []
    for family in sorted(by_family):
        recs = sorted(by_family[family], key=lambda r: r["id"])
        rng.shuffle(recs)
        queues.append(recs)
    picked: list[dict] = []
    for round_ in itertools.zip_longest(*queues):
        picked += [r for r in round_ if r is not None]
        if len(picked) >= count:
            break
    return picked[:count]


def collect_dataset_variants(
    k: int,
    count: int,
    out_dir: str | Path,
    *,
    backends: Sequence[str] = ("cuda", "rocm"),
    families: Sequence[str] | None = None,
    seed: int = 0,
    timeouts: dict[str, float] | None = None,
    data_home: str | Path | None = None,
    log=None,
) -> dict[str, int]:
    """Variants of ``count`` dispatches of the dataset (:func:`pick_dispatches`).

    What ``mlircost collect --variants K`` runs; see :func:`collect_variants`
    for the output and resuming. Candidates whose variant records the
    dataset holds already are not measured again (``known``): a dispatch
    with a group in the dataset gets only the candidates it lacks.
    """
    kernels = pick_dispatches(count, families=families, seed=seed, data_home=data_home)
    try:
        known = {
            r["id"]
            for r in iter_dataset("variants", data_home)
            if r["backend"] in backends
        }
    except FileNotFoundError:  # a data home without variants
        known = set()
    return collect_variants(
        kernels,
        k,
        out_dir,
        backends=backends,
        seed=seed,
        timeouts=timeouts,
        known=known,
        log=log,
    )


def _group_bytes(vmfb: Path, inputs_dir: Path, candidates: int) -> int:
    """Bytes of a group of ``candidates`` modules like ``vmfb``, with the inputs."""
    inputs = sum(f.stat().st_size for f in inputs_dir.glob("*"))
    return candidates * vmfb.stat().st_size + inputs


def export_variant_gpu_batch(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    limit: int = 50,
    max_bytes: int = 48 * 2**20,
    data_home: str | Path | None = None,
    timeout: float = 600.0,
) -> dict:
    """CUDA modules of measured candidates, for ``_gpu_runner.py`` on a GPU host.

    Each candidate that compiled for CUDA in ``run_dir/variants.jsonl`` and
    has no NVIDIA GPU latency yet (in the run's amendments or the dataset's
    of ``data_home``) is put back into the program its dispatch came from (the kernel's first
    module record, weights filled as the collector does) with
    ``--iree-hal-substitute-executable-configurations-from``, compiled with
    the collector's CUDA flags, and written as ``<variant id>.vmfb`` with the
    program's inputs (:func:`~._measure_cpu.write_inputs`, seed 0) and a
    ``manifest.json`` in the format of
    :func:`~._gpu_batch.export_gpu_batch`. Whole groups are taken, those of
    single-dispatch programs first (their latency is the candidate's alone),
    until ``limit`` candidates; a group whose modules and inputs would take
    the batch past ``max_bytes`` (a device transfer limit) is skipped.

    Returns
    -------
    dict
        The manifest.
    """
    from ._gpu_batch import has_gpu_latency
    from ._measure_cpu import entry_function, write_inputs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Candidates timed already, by the run's amendments or the dataset's.
    try:
        timed = {
            r["id"] for r in iter_dataset("variants", data_home) if has_gpu_latency(r)
        }
    except FileNotFoundError:  # a data home without variants
        timed = set()
    groups: dict[str, list[dict]] = {}
    for rec in iter_dataset("variants", run_dir):
        if (
            rec["backend"] == "cuda"
            and rec["targets"].get("nvidia_sm80.compiles")
            and not has_gpu_latency(rec)
            and rec["id"] not in timed
        ):
            groups.setdefault(rec["dispatch_id"], []).append(rec)
    kernels = {
        r["id"]: r for r in iter_dataset("kernels", data_home) if r["id"] in groups
    }
    wanted = {k["module_id"] for k in kernels.values()}
    modules = {
        r["id"]: r for r in iter_dataset("modules", data_home) if r["id"] in wanted
    }
    order = sorted(
        (d for d in groups if d in kernels and kernels[d]["module_id"] in modules),
        key=lambda d: (len(modules[kernels[d]["module_id"]]["kernels"]) > 1, d),
    )
    entries, skipped, total = [], [], 0
    for dispatch in order:
        if len(entries) + len(groups[dispatch]) > limit:
            break
        module = modules[kernels[dispatch]["module_id"]]
        level = module["compiled_level"]
        text = fill_missing_resources(module["ir"][level])
        inputs_dir = out / "inputs" / module["id"]
        group: list[dict] = []
        too_large = False
        for rec in groups[dispatch]:
            work = out / "work" / rec["id"]
            subst = work / "substitute"
            subst.mkdir(parents=True, exist_ok=True)
            exe = _executable_name(rec["ir"]["configured"])
            (subst / f"{exe}.mlir").write_text(
                fill_missing_resources(rec["ir"]["configured"]), encoding="utf-8"
            )
            (work / "input.mlir").write_text(text, encoding="utf-8")
            vmfb = out / f"{rec['id']}.vmfb"
            try:
                run = run_tool(
                    [
                        *_compile_args("cuda"),
                        "input.mlir",
                        f"--iree-input-type={INPUT_TYPES[level]}",
                        "--iree-hal-substitute-executable-configurations-from=substitute",
                        "-o",
                        str(vmfb.resolve()),
                    ],
                    timeout=timeout,
                    cwd=work,
                )
                if "substituted" not in run.stderr + run.stdout:
                    raise ToolError(f"iree-compile did not substitute @{exe}")
                name, types = entry_function(vmfb, text, timeout=timeout)
                values = write_inputs(types, inputs_dir, 0)
            except (ToolError, OSError, ValueError) as exc:
                skipped.append({"id": rec["id"], "reason": str(exc)[-500:]})
                continue
            finally:
                shutil.rmtree(work)
            if (
                not group
                and total + _group_bytes(vmfb, inputs_dir, len(groups[dispatch]))
                > max_bytes
            ):
                # Weights make some programs large: the first candidate shows
                # that the group cannot fit, so compile no more of it.
                vmfb.unlink()
                too_large = True
                break
            group.append(
                {
                    "id": rec["id"],
                    "dispatch_id": dispatch,
                    "is_default": rec["is_default"],
                    "family": rec["family"],
                    "function": name,
                    "types": types,
                    "inputs": [
                        v.replace("=@", f"=@inputs/{module['id']}/", 1) for v in values
                    ],
                    "vmfb": vmfb.name,
                }
            )
        files = [out / e["vmfb"] for e in group]
        # The program's inputs are shared by its dispatches' groups.
        shared = any(e["inputs"] and module["id"] in e["inputs"][0] for e in entries)
        inputs = [] if shared or not inputs_dir.is_dir() else list(inputs_dir.glob("*"))
        size = sum(f.stat().st_size for f in files + inputs)
        if too_large or not group or total + size > max_bytes:
            for f in files + inputs:
                f.unlink()
            if group or too_large:  # smaller groups may still fit
                skipped.append({"id": dispatch, "reason": "exceeds the batch budget"})
            continue
        total += size
        entries += group
    if (out / "work").is_dir():
        (out / "work").rmdir()
    manifest = {
        "modules": entries,
        "skipped": skipped,
        "bytes": total,
        "provenance": {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tools": toolchain_versions(),
            "compile_flags": [
                *BACKEND_FLAGS["cuda"],
                "--iree-hal-substitute-executable-configurations-from=<candidate>",
            ],
            "weights": "fill_missing_resources(ir[compiled_level]) of the "
            "kernel's first module, the candidate substituted for its executable",
            "inputs": {"seed": 0, "data": "write_inputs, as the collector's"},
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest
