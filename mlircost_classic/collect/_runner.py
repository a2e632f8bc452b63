"""Run collections: lower, fill weights, compile and measure, record.

For every program spec (or user file) the runner

1. lowers it in a child process with a timeout (torch's export cannot be
   interrupted in-process; see :mod:`._worker`), one child serving many specs
   in turn;
2. fills the stripped weights with deterministic data
   (:func:`~._resources.fill_missing_resources`) so the text compiles;
3. measures it on every requested hardware (:func:`~._measure.measure`); the
   hardware that needs a device or a quiet host (``HardwareSpec.needs``, e.g.
   ``cpu_timing``, ``cuda``) is measured in a second step, after the batch's
   compiles have finished so that they do not disturb the timings, one
   program at a time locally (``measure`` itself holds a per-host lock while
   timing) and, on a Dask cluster, only on workers that declare the resource;
4. appends the kernel records, then the module record, to
   ``out_dir/kernels.jsonl`` and ``out_dir/modules.jsonl``, one atomic line
   each (:func:`~mlircost_classic.datasets.append_records`).

A stage that fails or times out becomes a ``failures`` entry of the record and
the run goes on. A run killed at any moment loses only work in flight: the
module record is written last, so ``resume=True`` redoes any spec without one
and kernel records, identified by content, are not written twice.

Parallelism goes through joblib: ``n_jobs`` workers locally, or a Dask cluster
with ``joblib.parallel_config(backend="dask")``. Workers that have a GPU are
started with ``dask worker SCHEDULER --resources "cuda=1"``, and one worker per
host that may take CPU timings with ``--resources "cpu_timing=1"``; hardware
whose resource no worker declares is recorded as a failure, not left waiting.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import joblib

from ..datasets import (
    KERNEL_LEVEL,
    LEVELS,
    SCHEMA_VERSION,
    append_records,
    complete_record,
    iter_records,
    kernel_record_id,
    program_digest,
    programs_of,
)
from ..mlir import detect_level, read_source
from ._toolchain import Budget, _die_with_parent

__all__ = [
    "DEFAULT_TIMEOUTS",
    "CollectSummary",
    "collect",
    "collect_files",
    "collect_specs",
    "detect_level",
]

#: Seconds allowed per stage. ``lower`` bounds the lowering child process;
#: the other keys are passed to :func:`measure` (see its documentation).
DEFAULT_TIMEOUTS = {"lower": 600.0}

_BATCH_PER_WORKER = 4
#: The run folder's list of specs not measured: they lowered to a program
#: recorded already (one JSON line each; ``resume`` skips them).
SAME_PROGRAM = "same_program.jsonl"
_INPUT_LEVELS = ("torch", "linalg", "stablehlo", "tosa")
_MAX_MESSAGE = 2000
_COMMENT = re.compile(r"//.*")


@dataclass
class CollectSummary:
    """What a collection run did.

    Attributes
    ----------
    out_dir : Path
        Folder of ``modules.jsonl`` and ``kernels.jsonl``.
    requested : int
        Specs (or files) asked for.
    skipped : int
        Specs already recorded (``resume=True``) or given twice.
    status : dict
        Status -> number of module records written this run.
    known_programs : int
        Specs not measured because they lowered to a program recorded already
        (``known_programs`` of :func:`collect_specs`); listed in
        ``out_dir/same_program.jsonl``.
    kernels_written, kernels_shared : int
        New kernel records, and kernels found already recorded (same content).
    failures : dict
        Stage -> number of failures recorded this run.
    seconds : dict
        Stage -> total seconds over the records written this run.
    wall_seconds : float
        Duration of the run.
    problems : list of str
        Unreadable lines found in the output files on resume (skipped).
    """

    out_dir: Path
    requested: int = 0
    skipped: int = 0
    known_programs: int = 0
    status: dict = field(default_factory=dict)
    kernels_written: int = 0
    kernels_shared: int = 0
    failures: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    wall_seconds: float = 0.0
    problems: list = field(default_factory=list)

    @property
    def written(self) -> int:
        """Module records written this run."""
        return sum(self.status.values())

    def to_text(self) -> str:
        """Plain-text summary for the command line."""
        status = ", ".join(f"{k} {v}" for k, v in sorted(self.status.items()))
        lines = [
            f"{self.written} module records written to {self.out_dir} "
            f"({status or 'none'}), {self.skipped} skipped as already recorded; "
            f"{self.kernels_written} new kernel records ({self.kernels_shared} "
            f"already recorded); {self.wall_seconds:.1f} s"
        ]
        if self.known_programs:
            lines.append(
                f"  {self.known_programs} not measured: lowered to a program "
                f"recorded already (listed in {SAME_PROGRAM})"
            )
        for stage, n in sorted(self.failures.items()):
            lines.append(f"  failures at {stage}: {n}")
        if self.written:
            per = ", ".join(
                f"{k} {v / self.written:.2f}" for k, v in sorted(self.seconds.items())
            )
            lines.append(f"  seconds per record: {per}")
        lines += [f"  skipped unreadable line: {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Stages:
    """The stage functions; tests swap in fakes, the package uses the tools."""

    lower: Callable  # (spec, levels, timeout) -> object with texts/errors/seconds
    fill: Callable  # (text) -> text with every resource blob present
    strip: Callable  # (text) -> text without resource blobs
    measure: Callable  # measure() of the collector toolchain
    needs: Mapping  # hardware name -> resource it needs, or None
    deterministic: Mapping  # hardware name -> metrics a re-run must reproduce
    timeout_keys: frozenset  # the stage timeouts measure() accepts
    versions: Callable  # () -> {tool: version}
    host_cpu: Callable  # () -> str


def _real_stages() -> _Stages:
    from . import _measure, _targets, _toolchain
    from ._resources import fill_missing_resources, strip_resources

    return _Stages(
        lower=_lower_in_child,
        fill=fill_missing_resources,
        strip=strip_resources,
        measure=_measure.measure,
        needs={name: hw.needs for name, hw in _targets.HARDWARE.items()},
        deterministic={
            name: frozenset(hw.deterministic) for name, hw in _targets.HARDWARE.items()
        },
        timeout_keys=frozenset(_measure.DEFAULT_TIMEOUTS),
        versions=_toolchain.toolchain_versions,
        host_cpu=_toolchain.host_cpu,
    )


# --- lowering in a child process ---------------------------------------------


def _lowering_versions() -> dict:
    """Versions of the lowering stack, read without importing torch."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("torch", "torch-mlir"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


@dataclass
class _Lowered:
    texts: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)


class _LoweringServer:
    """One ``python -m mlircost_classic.collect._worker`` child, reused.

    The child imports torch and torch-mlir once and then lowers spec after
    spec, which saves several seconds per spec over a fresh process each.
    A child that runs past its time is killed with everything it started; one
    that dies, or that has served ``max_requests`` specs (so that torch's
    caches cannot grow without bound), is replaced by a fresh one for the next
    spec. Lowering is deterministic, so which child lowered a spec does not
    change its text.
    """

    #: Specs one child lowers before it is replaced.
    max_requests = 100

    def __init__(self, argv: Sequence[str] | None = None):
        self.argv = list(
            argv or [sys.executable, "-m", "mlircost_classic.collect._worker"]
        )
        self.proc: subprocess.Popen | None = None
        self.served = 0
        self._buffer = b""
        self._stderr: deque = deque(maxlen=200)
        self._drain: threading.Thread | None = None

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
        self.served, self._buffer = 0, b""
        # Drain stderr as it comes, so a chatty child never blocks on a full
        # pipe; keep its last lines for the message if it dies.
        self._stderr = deque(maxlen=200)
        self._drain = threading.Thread(
            target=self._stderr.extend, args=(self.proc.stderr,), daemon=True
        )
        self._drain.start()

    def close(self) -> None:
        """Kill the child, if any; the next request starts a fresh one.

        Its stderr is the drain thread's to read to the end: reading it here
        too (``communicate``) raced that thread for the pipe's buffer.
        """
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the child leads its own group
        proc.wait()
        self._drain.join(timeout=5)
        pipes = [proc.stdin, proc.stdout]
        if not self._drain.is_alive():  # else a grandchild holds the pipe open
            pipes.append(proc.stderr)
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.close()

    def _read_line(self, budget: Budget) -> bytes | str:
        """The child's next line, or why none came in ``budget``; EOFError if it died."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([fd], [], [], budget.wait())
            if not ready and (why := budget.exceeded()) is not None:
                return why
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise EOFError
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _failed(self) -> str:
        proc = self.proc
        proc.wait()
        self._drain.join(timeout=5)
        tail = b"".join(self._stderr).decode(errors="replace").strip()[-_MAX_MESSAGE:]
        self.close()
        return f"lowering process exited with {proc.returncode}: {tail}"

    def lower(self, request: dict, timeout: float) -> _Lowered | str:
        """Lower one request within ``timeout`` seconds of starting on it.

        The seconds are the child's CPU time (a :class:`Budget`, which also
        stops it after :data:`WALL_FACTOR` times that in wall-clock time
        neither running nor waiting to run). A
        fresh child gets ``timeout`` seconds more to import torch first.
        Returns the result, or a message saying why there is none.
        """
        if self.proc is not None and (
            self.proc.poll() is not None or self.served >= self.max_requests
        ):
            self.close()
        try:
            if self.proc is None:
                self._start()
                ready = self._read_line(Budget(self.proc.pid, timeout))
                if isinstance(ready, str):
                    self.close()
                    return ready
            self._stderr.clear()
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
            self.served += 1
            line = self._read_line(Budget(self.proc.pid, timeout))
        except (EOFError, BrokenPipeError):
            return self._failed()
        if isinstance(line, str):
            self.close()
            return line
        try:
            return _Lowered(**json.loads(line))
        except (ValueError, TypeError) as exc:
            self.close()
            return f"lowering process wrote an unreadable result: {_error(exc)}"


# One server per thread: a child started with PR_SET_PDEATHSIG dies with the
# thread that started it, and a server must not serve two threads at once.
_servers = threading.local()


def _lower_once(spec, levels: Sequence[str], timeout: float) -> _Lowered | str:
    """Lower a spec in this thread's lowering child: its result, or why there is none."""
    server = getattr(_servers, "server", None)
    if server is None:
        server = _servers.server = _LoweringServer()
    request = {"family": spec.family, "params": spec.params, "levels": list(levels)}
    return server.lower(request, timeout)


def _lower_in_child(spec, levels: Sequence[str], timeout: float) -> _Lowered:
    """Lower a spec in ``python -m mlircost_classic.collect._worker``.

    All levels come from one export; if the child times out or dies, a
    fresh one tries the linalg text alone, so that one level's import
    hanging does not cost the text the labels are compiled from.
    """
    result = _lower_once(spec, levels, timeout)
    if isinstance(result, _Lowered):
        return result
    errors = dict.fromkeys(levels, result)
    if "linalg" in levels and len(levels) > 1:
        retry = _lower_once(spec, ["linalg"], timeout)
        if isinstance(retry, _Lowered):
            errors.pop("linalg")
            retry.errors = {**errors, **retry.errors}
            return retry
    return _Lowered(errors=errors)


# --- stages as run by the workers ----------------------------------------------


def _failure(stage: str, message) -> dict:
    return {"stage": stage, "message": str(message)[:_MAX_MESSAGE]}


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _plain_measure(result) -> dict:
    """A MeasureResult as plain data (it may travel back from a Dask worker)."""
    return {
        "targets": dict(result.targets),
        "kernels": [
            {
                "name": k.name,
                "source": k.source,
                "targets": dict(k.targets),
                "calls": k.calls,
            }
            for k in result.kernels
        ],
        "failures": [_failure(stage, message) for stage, message in result.failures],
        "provenance": dict(result.provenance),
    }


def _no_measure(stage: str, message: str, step: str) -> dict:
    return {
        "targets": {},
        "kernels": [],
        "provenance": {},
        "failures": [_failure(stage, message)],
        "step": step,
        "seconds": 0.0,
    }


def _run_measure(
    stages: _Stages,
    text: str,
    hardware,
    level: str,
    timeouts,
    step: str = "measure",
    workdir: str | None = None,
) -> dict:
    """Measure one text; ``step`` names its wall time in the record's seconds.

    With a ``workdir``, the compiles are kept there and those of an earlier
    call for the same text are reused (``measure(..., reuse_compiles=True)``).
    """
    start = time.perf_counter()
    kwargs = {"workdir": workdir, "reuse_compiles": True} if workdir else {}
    try:
        result = stages.measure(
            text, list(hardware), input_level=level, timeouts=timeouts, **kwargs
        )
    except Exception as exc:  # a crash of one program must not end the run
        out = _no_measure("measure:" + ",".join(hardware), _error(exc), step)
    else:
        out = _plain_measure(result)
    out["step"] = step
    out["seconds"] = time.perf_counter() - start
    return out


def _prepare(
    item: dict,
    hardware: Sequence[str],
    stages: _Stages,
    lower_timeout: float,
    timeouts,
    workdir: str | None = None,
    known: Mapping | None = None,
) -> dict:
    """Lower (or read) a program, fill its weights, measure the plain hardware.

    ``workdir`` (local runs) keeps the compiles for the pinned step. A spec
    that lowers to a program of ``known`` (:func:`_is_recorded`) stops there,
    with ``known`` set to the program's digest.
    """
    out = {
        "ir": {},
        "failures": [],
        "seconds": {},
        "compile": None,
        "level": None,
        "workdir": workdir,
    }
    start = time.perf_counter()
    if "text" in item:
        level = item["level"]
        try:
            out["ir"] = {level: stages.strip(item["text"])}
        except Exception as exc:  # malformed user text is that record's failure
            out["failures"].append(_failure("input", _error(exc)))
            return out
    else:
        try:
            lowered = stages.lower(item["spec"], LEVELS, lower_timeout)
        except Exception as exc:  # e.g. no process could be started
            out["failures"].append(_failure("lower", _error(exc)))
            return out
        out["ir"] = dict(lowered.texts)
        out["failures"] += [
            _failure("lower:" + lv, m) for lv, m in lowered.errors.items()
        ]
        out["seconds"].update({"lower:" + k: v for k, v in lowered.seconds.items()})
        level = "linalg"
    out["seconds"]["lower"] = time.perf_counter() - start
    if level not in out["ir"]:
        return out
    if known and "spec" in item:
        digest = program_digest(out["ir"][level])
        if _is_recorded(known.get(digest), item["key"]):
            out["known"] = digest
            return out
    if level not in _INPUT_LEVELS:
        message = f"{level}-level text cannot be compiled; give one of {_INPUT_LEVELS}"
        out["failures"].append(_failure("input", message))
        return out
    start = time.perf_counter()
    try:
        out["compile"] = stages.fill(
            item["text"] if "text" in item else out["ir"][level]
        )
    except Exception as exc:
        out["failures"].append(_failure("fill_resources", _error(exc)))
        return out
    out["level"] = level
    out["seconds"]["fill_resources"] = time.perf_counter() - start
    if hardware:
        out["measure"] = [
            _run_measure(
                stages, out["compile"], hardware, level, timeouts, workdir=workdir
            )
        ]
    return out


# --- records ---------------------------------------------------------------------


def _is_recorded(program: tuple | None, key: str) -> bool:
    """Whether a spec need not be measured: its program (``(key, status)`` of
    the record holding it, or None) is recorded, and not by a record of this
    very spec that did not succeed (which a new record would replace)."""
    return program is not None and (program[0] != key or program[1] == "ok")


def _merge_provenance(into: dict, more: Mapping) -> None:
    for key, value in more.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            into[key].update(value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _records(item: dict, prepared: dict, hardware: Sequence[str], context: dict):
    """The module record and kernel records of one program."""
    failures = list(prepared["failures"])
    seconds = dict(prepared["seconds"])
    targets: dict = {}
    kernels: dict[str, dict] = {}
    measured: dict = {}
    for m in prepared.get("measure", []):
        targets.update(m["targets"])
        failures += m["failures"]
        seconds[m["step"]] = m["seconds"]
        prov = dict(m["provenance"])
        # Two measure() calls may run the same step (compile:llvm-cpu): add up.
        for name, value in prov.pop("seconds", {}).items():
            seconds[name] = seconds.get(name, 0.0) + value
        _merge_provenance(measured, prov)
        for k in m["kernels"]:
            entry = kernels.setdefault(
                k["name"], {"source": None, "targets": {}, "calls": None}
            )
            entry["source"] = entry["source"] or k["source"]
            entry["targets"].update(k["targets"])
            entry["calls"] = entry["calls"] or k.get("calls")
    hardware = sorted(hardware)
    # What measure() reports (tools, commands, host CPU of the worker that
    # measured, how each metric was made) wins over the runner's defaults.
    provenance = {"tools": context["versions"], "host_cpu": context["host_cpu"]}
    provenance.update(measured)
    provenance["tools"] = {**provenance["tools"], **context["lowering"]}
    provenance.update(
        package_version=context["package_version"],
        schema_version=SCHEMA_VERSION,
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        seed=context["seed"],
        hardware=hardware,
        python=platform.python_version(),
    )
    module = {
        "kind": "module",
        "key": item["key"],
        "source": item["source"],
        "family": item["family"],
        "params": item["params"],
        "ir": prepared["ir"],
        "compiled_level": prepared["level"],
        "targets": targets,
        "provenance": provenance,
        "seconds": seconds,
    }
    kernel_records: list[dict] = []
    kernel_ids: list[str] = []
    kernel_calls: dict[str, int] = {}
    for name, k in kernels.items():
        if not k["source"]:
            failures.append(
                _failure("kernels", f"dispatch {name}: no executable source")
            )
            continue
        kernel_ids.append(kernel_record_id(k["source"], hardware))
        if k["calls"]:
            kernel_calls[kernel_ids[-1]] = k["calls"]
        kernel_records.append(
            {
                "kind": "kernel",
                "key": item["key"],
                "name": name,
                "source": item["source"],
                "family": item["family"],
                "params": item["params"],
                "ir": {KERNEL_LEVEL: k["source"]},
                "compiled_level": KERNEL_LEVEL,
                "targets": k["targets"],
                "provenance": provenance,
                "status": "ok" if k["targets"] else "failed",
                "failures": []
                if k["targets"]
                else [_failure("measure", "no per-kernel target was measured")],
                "seconds": {},
            }
        )
    if not targets and not failures:
        failures.append(_failure("measure", "no target was measured"))
    module["kernels"] = kernel_ids
    if kernel_calls:
        module["kernel_calls"] = kernel_calls
    module["failures"] = failures
    module["status"] = "failed" if not targets else ("partial" if failures else "ok")
    module = complete_record(module)
    for rec in kernel_records:
        rec["module_id"] = module["id"]
    return module, [complete_record(rec) for rec in kernel_records]


# --- the run ------------------------------------------------------------------------


def _iter_existing(path: Path, problems: list[str]):
    return iter_records(path, problems) if path.exists() else iter(())


def _dask_client():
    """The Dask client of the active joblib backend, or None."""
    backend, _ = joblib.parallel.get_active_backend()
    if type(backend).__name__ == "DaskDistributedBackend":
        return backend.client
    return None


def _resource_available(client, resource: str) -> bool:
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return any(w.get("resources", {}).get(resource, 0) >= 1 for w in workers)


def _measure_batch_pinned(prepared, hardware, stages, timeouts, n_jobs) -> None:
    """Measure the hardware that needs a resource, appending to ``measure``."""
    groups: dict[str, list[str]] = {}
    for hw in hardware:
        resource = stages.needs.get(hw)
        if resource:
            groups.setdefault(resource, []).append(hw)
    ready = [p for p in prepared if p["compile"] is not None]
    client = _dask_client()
    for resource, hws in groups.items():
        if not ready:
            return
        step = f"measure:{resource}"
        # Locally, timings run one after the other with nothing else of this
        # run beside them; on a cluster, resources pin them to their workers.
        config, jobs = contextlib.nullcontext(), 1
        if client is not None:
            if not _resource_available(client, resource):
                message = (
                    f"no Dask worker has resource {resource!r}; start one with "
                    f'dask worker SCHEDULER --resources "{resource}=1"'
                )
                stage = "measure:" + ",".join(hws)
                for p in ready:
                    p.setdefault("measure", []).append(
                        _no_measure(stage, message, step)
                    )
                continue
            config = joblib.parallel_config(
                backend="dask", client=client, resources={resource: 1}
            )
            jobs = n_jobs
        with config:
            results = joblib.Parallel(n_jobs=jobs)(
                joblib.delayed(_run_measure)(
                    stages,
                    p["compile"],
                    hws,
                    p["level"],
                    timeouts,
                    step,
                    # A cluster's workers do not share folders.
                    p["workdir"] if client is None else None,
                )
                for p in ready
            )
        for p, result in zip(ready, results, strict=True):
            p.setdefault("measure", []).append(result)


def _run(
    items: list[dict],
    hardware: Sequence[str],
    out_dir,
    *,
    seed,
    resume: bool,
    n_jobs,
    timeouts,
    progress: bool,
    stages: _Stages,
    known: Mapping | None = None,
) -> CollectSummary:
    from tqdm import tqdm

    from .. import __version__

    unknown = sorted(set(hardware) - set(stages.needs))
    if unknown:
        raise ValueError(
            f"unknown hardware {unknown}; choose from {sorted(stages.needs)}"
        )
    bad = sorted(set(timeouts or {}) - {"lower"} - set(stages.timeout_keys))
    if bad:
        raise ValueError(
            f"unknown timeout keys {bad}; choose from "
            f"{['lower', *sorted(stages.timeout_keys)]}"
        )
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    modules_path, kernels_path = out / "modules.jsonl", out / "kernels.jsonl"
    same_path = out / SAME_PROGRAM
    summary = CollectSummary(out_dir=out, requested=len(items))
    # Only keys and ids are kept (and, with ``known``, the run's own programs,
    # so that two specs of one program are measured once), in one reading: a
    # large run's texts need not fit in memory.
    done: dict[str, str] = {}
    own: dict[str, tuple] = {}
    for r in _iter_existing(modules_path, summary.problems):
        done[r["id"]] = r["key"]
        if known is not None:
            for program, holder in programs_of([r]).items():
                own.setdefault(program, holder)
    if known is not None:
        known = {**known, **own}
    kernel_ids = {r["id"] for r in _iter_existing(kernels_path, summary.problems)}
    if (done or kernel_ids) and not resume:
        raise FileExistsError(
            f"{out} already holds a collection ({len(done)} module records); "
            "pass resume=True to continue it, or choose another folder"
        )
    seen = set(done.values())
    seen.update(r["key"] for r in _iter_existing(same_path, summary.problems))
    module_ids = set(done)
    todo = []
    for item in items:
        if item["key"] not in seen:
            seen.add(item["key"])
            todo.append(item)
    summary.skipped = len(items) - len(todo)
    timeouts = {**DEFAULT_TIMEOUTS, **(timeouts or {})}
    measure_timeouts = {k: v for k, v in timeouts.items() if k != "lower"}
    plain = [hw for hw in hardware if not stages.needs.get(hw)]
    context = {
        "package_version": __version__,
        "seed": seed,
        "versions": stages.versions(),
        "host_cpu": stages.host_cpu(),
        "lowering": _lowering_versions() if any("spec" in i for i in todo) else {},
    }
    workers = joblib.effective_n_jobs(n_jobs)
    # Programs take 3 to 30 s; a larger batch leaves a worker idle less often
    # while the slowest of its batch finishes.
    batch = 1 if workers == 1 else _BATCH_PER_WORKER * workers
    status, failures, seconds = Counter(), Counter(), Counter()
    # Locally, the step that runs alone (host timing) takes the modules the
    # parallel step compiled from a folder per program, removed per batch.
    keep = plain != list(hardware) and _dask_client() is None
    with (
        (
            tempfile.TemporaryDirectory(prefix="mlircost-run-")
            if keep
            else contextlib.nullcontext()
        ) as scratch,
        tqdm(total=len(todo), disable=not progress, unit="program") as bar,
    ):
        for first in range(0, len(todo), batch):
            chunk = todo[first : first + batch]
            folders = [
                os.path.join(scratch, str(first + i)) if scratch else None
                for i in range(len(chunk))
            ]
            prepared = joblib.Parallel(n_jobs=n_jobs)(
                joblib.delayed(_prepare)(
                    item,
                    plain,
                    stages,
                    timeouts["lower"],
                    measure_timeouts,
                    folder,
                    known,
                )
                for item, folder in zip(chunk, folders, strict=True)
            )
            _measure_batch_pinned(prepared, hardware, stages, measure_timeouts, n_jobs)
            for folder in folders:
                if folder:
                    shutil.rmtree(folder, ignore_errors=True)
            for item, prep in zip(chunk, prepared, strict=True):
                if prep.get("known"):
                    append_records(same_path, [_same_program(item, prep, known)])
                    summary.known_programs += 1
                    bar.update(1)
                    continue
                module, kernels = _records(item, prep, hardware, context)
                fresh = [k for k in kernels if k["id"] not in kernel_ids]
                summary.kernels_shared += len(kernels) - len(fresh)
                # Kernels first: the module record marks the spec as done.
                append_records(kernels_path, fresh)
                kernel_ids.update(k["id"] for k in fresh)
                summary.kernels_written += len(fresh)
                if module["id"] not in module_ids:
                    append_records(modules_path, [module])
                    module_ids.add(module["id"])
                    status[module["status"]] += 1
                    failures.update(f["stage"] for f in module["failures"])
                    seconds.update(module["seconds"])
                    if known is not None:
                        for program, holder in programs_of([module]).items():
                            known.setdefault(program, holder)
                else:
                    summary.skipped += 1
                bar.update(1)
                bar.set_postfix(status, refresh=False)
    summary.status = dict(status)
    summary.failures = dict(failures)
    summary.seconds = {k: round(v, 3) for k, v in seconds.items()}
    summary.wall_seconds = time.perf_counter() - start
    return summary


def _same_program(item: dict, prepared: dict, known: Mapping) -> dict:
    """The line of ``SAME_PROGRAM`` for a spec not measured."""
    return {
        "key": item["key"],
        "family": item["family"],
        "program": prepared["known"],
        "recorded_as": known[prepared["known"]][0],
        "seconds": prepared["seconds"],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def collect(
    families: Sequence[str] | None,
    count: int,
    seed: int,
    hardware: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    resume: bool = False,
    n_jobs: int | None = 1,
    timeouts: Mapping[str, float] | None = None,
    progress: bool = True,
    small: bool = False,
) -> CollectSummary:
    """Collect labelled records for ``count`` programs sampled from families.

    Parameters
    ----------
    families : sequence of str or None
        Family names (see ``FAMILIES``); None for all.
    count : int
        Number of program specs, drawn by ``sample_specs(families, count, seed)``.
    seed : int
        Seed of the sampler; the same seed gives the same specs.
    hardware : sequence of str
        Names from ``HARDWARE`` (``"cpu_x86_64_v3"``, ``"nvidia_sm80"`` ...).
    out_dir : path-like
        Folder receiving ``modules.jsonl`` and ``kernels.jsonl``.
    resume : bool, default=False
        Continue a run in ``out_dir``, skipping specs already recorded (failed
        ones included). Without it, a non-empty ``out_dir`` is an error.
    n_jobs : int or None, default=1
        Parallel workers for lowering and compiling (joblib semantics; under
        ``joblib.parallel_config(backend="dask")`` pass -1 or None).
    timeouts : mapping, optional
        Seconds per stage: ``"lower"`` (default 600) and the keys of
        ``measure``'s ``timeouts``.
    progress : bool, default=True
        Show a progress bar.
    small : bool, default=False
        Draw tiny programs (``sample_specs(..., small=True)``), for tests.

    Returns
    -------
    CollectSummary

    Raises
    ------
    FileExistsError
        If ``out_dir`` holds records and ``resume`` is False.
    ValueError
        For an unknown family or hardware name.
    """
    from ._families import sample_specs

    return collect_specs(
        sample_specs(families, count, seed, small=small),
        hardware,
        out_dir,
        seed=seed,
        resume=resume,
        n_jobs=n_jobs,
        timeouts=timeouts,
        progress=progress,
    )


def collect_specs(
    specs: Iterable,
    hardware: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    seed: int | None = None,
    resume: bool = False,
    n_jobs: int | None = 1,
    timeouts: Mapping[str, float] | None = None,
    progress: bool = True,
    known_programs: Mapping | None = None,
) -> CollectSummary:
    """Collect labelled records for the given program specs.

    :func:`collect` samples its specs; this takes a list made elsewhere, such
    as the out-of-distribution suite's (``ood_specs()``).

    Parameters
    ----------
    specs : iterable of ProgramSpec
        Specs of any source (``FAMILIES``, ``network_specs("torchvision")``
        ...) or of the OOD suite (``OOD_FAMILIES``); each record's ``source``
        is its family's.
    hardware, out_dir, resume, n_jobs, timeouts, progress
        As in :func:`collect`.
    seed : int, optional
        The seed the specs were sampled with, recorded in provenance (None
        for a fixed list; builds are seeded from each spec anyway).
    known_programs : mapping, optional
        Programs recorded already (``datasets.bundled_programs()``: compiled
        text digest -> key and status of the record holding it). A spec that
        lowers to one of them, or to a program of an earlier record of the
        run, is not measured (``dataset pack`` would skip its record as the
        same program) unless the record holding it is this spec's own and did
        not succeed; it is listed in ``out_dir/same_program.jsonl`` instead,
        which ``resume`` skips. None measures every spec.

    Returns
    -------
    CollectSummary
    """
    from ._sources import family_source

    items = [
        {
            "key": s.key(),
            "source": family_source(s.family),
            "family": s.family,
            "params": s.params,
            "spec": s,
        }
        for s in specs
    ]
    return _run(
        items,
        hardware,
        out_dir,
        seed=seed,
        resume=resume,
        n_jobs=n_jobs,
        timeouts=timeouts,
        progress=progress,
        stages=_real_stages(),
        known=known_programs,
    )


def collect_files(
    paths: Iterable[str | os.PathLike],
    hardware: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    level: str | None = None,
    resume: bool = False,
    n_jobs: int | None = 1,
    timeouts: Mapping[str, float] | None = None,
    progress: bool = True,
) -> CollectSummary:
    """Label a user's own MLIR files for the same targets.

    Parameters
    ----------
    paths : iterable of path-like
        MLIR files at torch, linalg, stablehlo or tosa level. Files whose
        weights were stripped (``dense_resource`` without blobs, as the
        dataset stores them) get deterministic, non-splat weights.
    hardware, out_dir, resume, n_jobs, timeouts, progress
        As in :func:`collect`.
    level : str, optional
        The level of every file; default detected per file (:func:`detect_level`).

    Returns
    -------
    CollectSummary
        Records have source and family ``"user"`` and params ``{"file": name}``; their
        key is the sha256 of the file text.

    Raises
    ------
    ValueError
        Before anything runs, if a file is empty (nothing but whitespace and
        comments) or not MLIR text.
    OSError
        If a file cannot be read.
    """
    if level is not None and level not in _INPUT_LEVELS:
        raise ValueError(f"level must be one of {_INPUT_LEVELS}, got {level!r}")
    items = []
    for path in paths:
        text = read_source(path, input="filename", allow_empty=True)
        if not _COMMENT.sub("", text).strip():
            raise ValueError(f"{path}: the file holds no MLIR operations")
        items.append(
            {
                "key": "file:" + hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "source": "user",
                "family": "user",
                "params": {"file": Path(path).name},
                "text": text,
                "level": level or detect_level(text),
            }
        )
    return _run(
        items,
        hardware,
        out_dir,
        seed=None,
        resume=resume,
        n_jobs=n_jobs,
        timeouts=timeouts,
        progress=progress,
        stages=_real_stages(),
    )
