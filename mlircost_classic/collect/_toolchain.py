"""The real tools the collector runs, and a safe way to run them.

IREE's Python packages put Python wrappers called ``iree-compile`` and so on on
``PATH``; the collector runs the native binaries inside the packages instead
(``iree/compiler/_mlir_libs`` and ``iree/_runtime_libs``), so that a timeout
kills the tool itself and valgrind instruments the runtime, not a Python
interpreter. ``valgrind`` and ``ptxas`` come from ``PATH``.

:func:`run_tool` runs one command in its own process group with a timeout; on
expiry the whole group is killed. Any failure (missing tool, timeout, non-zero
exit) raises :class:`ToolError` whose message says what happened, for the
caller to record as a failed stage.

A timeout is a budget of CPU seconds (:class:`Budget`): the tool's processes'
own time where the system reports it (Linux ``/proc``), so that a collection
pushed back behind other work (``nice``, a busy host) is not failed for the
time it waited; a group that neither runs nor waits to run (its threads'
run-queue wait, ``/proc/<pid>/task/<tid>/schedstat``) for :data:`WALL_FACTOR`
times the budget is stopped too, which ends a tool that hangs without using
the CPU.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "WALL_FACTOR",
    "Budget",
    "ToolError",
    "ToolRun",
    "Toolchain",
    "find_tools",
    "host_cpu",
    "run_tool",
    "toolchain_versions",
]

_STDERR_LINES = 15
# MLIR diagnostics ("input.mlir:3:5: error: ...") that name the failure; IREE
# follows them with the offending op, often a whole module, so the tail of its
# stderr alone is the end of an IR dump. Runner records keep 2,000 characters.
_ERROR_LINE = re.compile(r"(?:^|:\s)error:\s")
_ERROR_LINES = 4
_ERROR_CHARS = 400

# A seccomp filter that makes io_uring_setup (syscall 425 on every Linux
# architecture) fail with ENOSYS, then execs the command. IREE's runtime then
# falls back to its portable POSIX proactor. Under valgrind the io_uring
# proactor deadlocks: valgrind does not treat io_uring_enter as a blocking
# call, so the proactor thread sleeps in the kernel holding valgrind's lock.
_WITHOUT_IO_URING = """\
import ctypes, os, struct, sys
def ins(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)
prog = b"".join([
    ins(0x20, 0, 0, 0),                 # load the syscall number
    ins(0x15, 0, 1, 425),               # io_uring_setup?
    ins(0x06, 0, 0, 0x00050000 | 38),   # then fail with ENOSYS
    ins(0x06, 0, 0, 0x7FFF0000),        # else allow
])
buf = ctypes.create_string_buffer(prog)
class FProg(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = FProg(len(prog) // 8, ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0):
    sys.exit("cannot install the seccomp filter: errno %d" % ctypes.get_errno())
os.execvp(sys.argv[1], sys.argv[1:])
"""


_PR_SET_PDEATHSIG = 1


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _die_with_parent():
    """A ``preexec_fn`` that has the kernel kill the child when its parent dies.

    Tools run in their own session (so that a timeout kills their whole
    group), which also means a collector killed by a signal would leave them
    running, orphaned, for as long as they take. On Linux the child asks for
    ``SIGKILL`` when the thread that started it dies (``PR_SET_PDEATHSIG``,
    kept across ``exec``); ``None`` elsewhere. The C library is loaded here,
    in the parent, so the child only makes the system call.
    """
    libc = _libc() if sys.platform.startswith("linux") else None
    if libc is None:
        return None
    prctl, sig = libc.prctl, int(signal.SIGKILL)

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, sig)

    return hook


class ToolError(RuntimeError):
    """A tool was missing, timed out or failed; the message says which."""


#: A timed stage stops once it has spent this many times its budget of
#: wall-clock seconds neither running nor waiting to run (a tool blocked
#: forever uses no CPU; one starved by busier work waits on a run queue).
WALL_FACTOR = 4.0

# /proc/<pid>/stat fields after the command's closing parenthesis: the process
# group, then user and system time, then those of its waited-for children.
_PGRP, _UTIME, _CSTIME = 2, 11, 14
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _group_cpu_seconds(pgid: int) -> float | None:
    """CPU seconds used so far by the live processes of group ``pgid``.

    User and system time of each process (all its threads) and of the
    children it has waited for, from ``/proc``; ``None`` where there is no
    ``/proc`` (not Linux), or none of the group is left.
    """
    times = _group_times(pgid)
    return None if times is None else times[0]


def _group_times(pgid: int) -> tuple[float, float, bool] | None:
    """CPU seconds of group ``pgid`` (:func:`_group_cpu_seconds`), the seconds
    its live threads have waited on a run queue (0 where the kernel keeps no
    ``schedstat``), and whether one of its threads is running, waiting to run
    or in an uninterruptible wait (state ``R`` or ``D`` now); ``None`` without
    ``/proc`` or without the group.
    """
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    ticks, waited, found, runnable = 0, 0, False, False
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile, or not readable
        if int(fields[_PGRP]) == pgid:
            found = True
            ticks += sum(int(v) for v in fields[_UTIME : _CSTIME + 1])
            thread_wait, thread_runnable = _thread_figures(pid)
            waited += thread_wait
            runnable = runnable or thread_runnable
    return (ticks / _TICKS, waited / 1e9, runnable) if found else None


def _thread_figures(pid: str) -> tuple[int, bool]:
    """Nanoseconds the threads of a process have waited to run, and whether
    one of them is in state ``R`` or ``D``."""
    total, runnable = 0, False
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, False
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[1])
            if not runnable:
                with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                    runnable = f.read().rsplit(b")", 1)[1].split()[0] in (b"R", b"D")
        except (OSError, IndexError, ValueError):
            continue
    return total, runnable


class Budget:
    """The time a process group may take: CPU seconds, and a ceiling on hanging.

    Parameters
    ----------
    pgid : int
        The group (a tool started with ``start_new_session=True`` leads its
        own: its pid).
    seconds : float
        CPU seconds the group may use from now on. Where the system does not
        report a group's CPU time, wall-clock seconds instead.

    Notes
    -----
    Whatever its CPU use, the group is out of time once it has spent
    :data:`WALL_FACTOR` times ``seconds`` of wall-clock time from now neither
    running nor waiting on a run queue (a tool that hangs). Time spent
    waiting to run does not count: a group starved by busier work is not
    hung. Each :meth:`exceeded` call looks at the interval since the last: it
    is not idle where a thread of the group is running, waiting to run or in
    an uninterruptible wait when looked at, and otherwise idle for the part of
    it not covered by the group's CPU and run-queue seconds. The kernel adds a
    thread's run-queue wait only when the thread next runs, so a starved
    group's seconds come in bursts: seconds beyond an interval's length are
    carried to the next ones (up to :attr:`carry`) instead of leaving the
    intervals between two bursts counted as idle.
    """

    #: Seconds between two looks at the group's CPU time.
    poll = 1.0
    #: Most CPU and run-queue seconds beyond the wall clock carried forward.
    carry = 30.0

    def __init__(self, pgid: int, seconds: float):
        self.pgid, self.seconds = pgid, seconds
        self.start = self.last = time.monotonic()
        times = _group_times(pgid)
        self.cpu_start = None if times is None else times[0]
        self.last_busy = None if times is None else times[0] + times[1]
        # Wall-clock seconds the group neither ran nor waited to run, and the
        # busy seconds carried forward.
        self.idle = self.credit = 0.0

    def _idle_limit(self) -> float:
        # Without CPU figures the wall clock is the budget itself.
        return self.seconds * (WALL_FACTOR if self.cpu_start is not None else 1.0)

    def _counted(self) -> float:
        """Seconds counted against :meth:`_idle_limit`: the idle ones, or every
        wall-clock second without CPU figures."""
        if self.cpu_start is None:
            return time.monotonic() - self.start
        return self.idle

    def wait(self) -> float:
        """Seconds to wait before :meth:`exceeded` can next say yes."""
        left = self._idle_limit() - self._counted()
        return max(0.0, min(self.poll, self.seconds, left))

    def exceeded(self) -> str | None:
        """``None`` while within budget, else why not ("timed out after ...")."""
        now = time.monotonic()
        times = _group_times(self.pgid) if self.cpu_start is not None else None
        cpu = None if times is None else times[0]
        if cpu is not None and cpu - self.cpu_start > self.seconds:
            return f"timed out after {self.seconds:g} s of CPU time"
        if self.cpu_start is not None:
            # The interval's seconds neither running nor waiting to run (CPU +
            # run queue); all of them once the group is gone from /proc.
            busy, active = (
                (self.last_busy, False)
                if times is None
                else (times[0] + times[1], times[2])
            )
            slack = self.credit + (busy - self.last_busy) - (now - self.last)
            if active:
                slack = max(slack, 0.0)
            self.idle += max(0.0, -slack)
            self.credit = min(max(slack, 0.0), self.carry)
            self.last, self.last_busy = now, busy
        if self._counted() <= self._idle_limit():
            return None
        if self.cpu_start is None:
            return f"timed out after {self.seconds:g} s"
        used = "" if cpu is None else f" with {cpu - self.cpu_start:.1f} s of CPU time"
        return (
            f"timed out after {self.seconds:g} s: {self.idle:.0f} s of wall-clock "
            f"time neither running nor waiting to run{used} (hung?)"
        )


@dataclass(frozen=True)
class Toolchain:
    """Paths of the tools (``None`` where a tool is not installed)."""

    iree_compile: str | None
    iree_run_module: str | None
    iree_benchmark_module: str | None
    iree_benchmark_executable: str | None
    iree_dump_module: str | None
    valgrind: str | None
    ptxas: str | None

    def require(self, name: str) -> str:
        """The path of tool ``name`` (a field name), or raise :class:`ToolError`."""
        path = getattr(self, name)
        if path is None:
            raise ToolError(f"{name.replace('_', '-')} is not installed")
        return path


@dataclass
class ToolRun:
    """A finished, successful tool run."""

    args: list[str]
    stdout: str
    stderr: str
    seconds: float


def _package_dir(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except ImportError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _executable(directory: Path | None, name: str) -> str | None:
    if directory is None:
        return None
    path = directory / name
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


@functools.lru_cache(maxsize=1)
def find_tools() -> Toolchain:
    """Locate the native IREE binaries, valgrind and ptxas.

    Returns
    -------
    Toolchain
        Absolute paths; a tool that is not installed is ``None``.
    """
    compiler = _package_dir("iree.compiler._mlir_libs")
    runtime = _package_dir("iree._runtime_libs")
    return Toolchain(
        iree_compile=_executable(compiler, "iree-compile"),
        iree_run_module=_executable(runtime, "iree-run-module"),
        iree_benchmark_module=_executable(runtime, "iree-benchmark-module"),
        iree_benchmark_executable=_executable(runtime, "iree-benchmark-executable"),
        iree_dump_module=_executable(runtime, "iree-dump-module"),
        valgrind=shutil.which("valgrind"),
        ptxas=shutil.which("ptxas"),
    )


def _failure_output(text: str) -> str:
    """A tool's diagnostics (``error:`` lines) first, then its other last lines."""
    lines = text.strip().splitlines()
    errors = [ln[:_ERROR_CHARS] for ln in lines if _ERROR_LINE.search(ln)]
    rest = [ln for ln in lines[-_STDERR_LINES:] if not _ERROR_LINE.search(ln)]
    return "\n".join([*list(dict.fromkeys(errors))[:_ERROR_LINES], *rest])


def run_tool(
    args: list[str],
    *,
    timeout: float,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    inherit_env: bool = True,
    without_io_uring: bool = False,
) -> ToolRun:
    """Run a command with a timeout that kills its whole process group.

    Parameters
    ----------
    args : list of str
        The command; ``args[0]`` is the tool's path.
    timeout : float
        CPU seconds of the process group before it is killed (a
        :class:`Budget`: also killed after :data:`WALL_FACTOR` times that in
        wall-clock time neither running nor waiting to run).
    cwd : path, optional
        Working directory.
    env : dict, optional
        Environment variables, added to the current environment.
    inherit_env : bool, default True
        If False, ``env`` is the whole environment.
    without_io_uring : bool, default False
        Deny the ``io_uring_setup`` system call (seccomp) so that IREE's
        runtime uses its POSIX event loop; needed to run it under valgrind.

    Returns
    -------
    ToolRun

    Raises
    ------
    ToolError
        If the tool is missing, runs past ``timeout`` ("timed out after N s")
        or exits with a non-zero status (the status, the ``error:`` lines
        of stderr, then its last lines).
    """
    name = Path(args[0]).name
    command = list(args)
    if without_io_uring:
        command = [sys.executable, "-c", _WITHOUT_IO_URING, *command]
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env={**(os.environ if inherit_env else {}), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
    except OSError as exc:
        raise ToolError(f"{name} could not start: {exc}") from exc
    budget, why = Budget(proc.pid, timeout), None
    try:
        while why is None:
            try:
                # Retrying communicate() after its timeout loses no output.
                stdout, stderr = proc.communicate(timeout=budget.wait())
                break
            except subprocess.TimeoutExpired:
                why = budget.exceeded()
    except BaseException:
        _kill_group(proc)
        raise
    if why is not None:
        _kill_group(proc)
        raise ToolError(f"{name} {why}")
    if proc.returncode != 0:
        raise ToolError(
            f"{name} exited with status {proc.returncode}: "
            f"{_failure_output(stderr or stdout)}"
        )
    return ToolRun(list(args), stdout, stderr, time.perf_counter() - start)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def _version(args: list[str], pick) -> str:
    try:
        run = run_tool(args, timeout=60)
    except ToolError as exc:
        return f"unavailable ({exc})"
    return pick((run.stdout + run.stderr).strip().splitlines())


@functools.lru_cache(maxsize=1)
def toolchain_versions() -> dict[str, str]:
    """Versions of the tools that make the labels.

    Returns
    -------
    dict
        ``iree-compile``, ``iree-runtime``, ``ptxas``, ``valgrind`` -> version
        line; ``"missing"`` for a tool that is not installed.
    """
    tools = find_tools()
    versions = {}
    if tools.iree_compile:
        versions["iree-compile"] = _version(
            [tools.iree_compile, "--version"],
            lambda lines: next((ln.strip() for ln in lines if "version" in ln), ""),
        )
    try:
        from iree._runtime_libs.version import REVISIONS, VERSION
    except ImportError:
        versions["iree-runtime"] = "missing"
    else:
        versions["iree-runtime"] = f"{VERSION} @ {REVISIONS.get('IREE', '?')}"
    if tools.ptxas:
        versions["ptxas"] = _version(
            [tools.ptxas, "--version"],
            lambda lines: next((ln for ln in lines if "release" in ln), lines[-1]),
        )
    if tools.valgrind:
        versions["valgrind"] = _version([tools.valgrind, "--version"], lambda x: x[0])
    for name in ("iree-compile", "ptxas", "valgrind"):
        versions.setdefault(name, "missing")
    return versions


@functools.lru_cache(maxsize=1)
def host_cpu() -> str:
    """The host CPU model (``model name`` of ``/proc/cpuinfo``) and core count."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    return f"{model} ({os.cpu_count()} logical CPUs)"
