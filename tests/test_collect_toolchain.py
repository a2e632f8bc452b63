"""Tests of the collector's tool runner, target table and output parsers.

These need no IREE: the parsers read text in the formats the real tools
write (ptxas -v, AMDGPU metadata, callgrind, Google Benchmark JSON).
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mlircost_classic.collect import _toolchain
from mlircost_classic.collect._measure_cpu import (
    benchmark_samples_us,
    elf_code_bytes,
    read_callgrind,
    write_inputs,
)
from mlircost_classic.collect._measure_gpu import (
    amd_occupancy,
    amdgpu_metadata,
    nvidia_occupancy,
    ptx_threads_per_block,
)
from mlircost_classic.collect._targets import HARDWARE, target_names
from mlircost_classic.collect._toolchain import ToolError, host_cpu, run_tool

# --- run_tool ---------------------------------------------------------------


def test_run_tool_returns_output():
    run = run_tool([sys.executable, "-c", "print('hello')"], timeout=60)
    assert run.stdout.strip() == "hello"
    assert run.seconds >= 0


def test_run_tool_reports_exit_status_and_stderr_tail():
    code = "import sys; print('first'); sys.stderr.write('boom\\n'); sys.exit(3)"
    with pytest.raises(ToolError, match=r"exited with status 3: boom"):
        run_tool([sys.executable, "-c", code], timeout=60)


def test_run_tool_kills_the_process_group_on_timeout(tmp_path, monkeypatch):
    # A group that sleeps uses no CPU: the wall-clock ceiling stops it.
    monkeypatch.setattr(_toolchain, "WALL_FACTOR", 4.0)
    marker = tmp_path / "child-survived"
    child = tmp_path / "child.py"
    child.write_text(f"import time\ntime.sleep(4)\nopen({str(marker)!r}, 'w')\n")
    parent = tmp_path / "parent.py"
    # The child outlives its parent unless the whole group is killed.
    parent.write_text(
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, {str(child)!r}])\n"
        "time.sleep(30)\n"
    )
    start = time.perf_counter()
    with pytest.raises(ToolError, match=r"timed out after 0.5 s: .* wall-clock"):
        run_tool([sys.executable, str(parent)], timeout=0.5)
    # Not at the budget (0.5 s): at WALL_FACTOR times it.
    assert 2.0 <= time.perf_counter() - start < 10
    time.sleep(3)
    assert not marker.exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_run_tool_budget_is_cpu_time(monkeypatch):
    # A tool that computes is stopped by the CPU seconds it used, long before
    # the wall-clock ceiling, however busy the host.
    monkeypatch.setattr(_toolchain, "WALL_FACTOR", 40.0)
    start = time.perf_counter()
    with pytest.raises(ToolError, match=r"timed out after 0.5 s of CPU time"):
        run_tool([sys.executable, "-c", "while True: pass"], timeout=0.5)
    assert time.perf_counter() - start < 20


@pytest.fixture
def simulated(monkeypatch):
    """A simulated clock and group figures (CPU s, run-queue s, a thread runnable)."""
    clock = {"now": 0.0}
    figures = {"cpu": 0.0, "wait": 0.0, "runnable": False}
    monkeypatch.setattr(_toolchain.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(
        _toolchain,
        "_group_times",
        lambda pgid: (figures["cpu"], figures["wait"], figures["runnable"]),
    )
    return clock, figures


def test_budget_ceiling_counts_time_neither_running_nor_waiting(simulated):
    # Simulated clock and /proc figures: a group starved by busier work waits
    # on a run queue and is not "hung" however long it waits; one that
    # neither runs nor waits is stopped at WALL_FACTOR times its budget.
    clock, figures = simulated
    starved = _toolchain.Budget(1, 10.0)
    for _ in range(1000):  # 1,000 s, 0.1 s of CPU, the rest on a run queue
        clock["now"] += 1.0
        figures["cpu"] += 0.0001
        figures["wait"] += 0.9999
        assert starved.exceeded() is None
    assert starved.wait() == 1.0
    # The CPU budget still holds.
    figures["cpu"] += 10.0
    clock["now"] += 1.0
    assert starved.exceeded() == "timed out after 10 s of CPU time"

    hung = _toolchain.Budget(1, 10.0)
    answers = []
    for _ in range(45):  # blocked: neither CPU nor run-queue time grows
        clock["now"] += 1.0
        answers.append(hung.exceeded())
    assert answers[:40] == [None] * 40
    assert answers[40].startswith("timed out after 10 s: 41 s of wall-clock time")
    assert "neither running nor waiting to run" in answers[40]
    # Half the time on a run queue: half the wall clock counts.
    half = _toolchain.Budget(1, 10.0)
    for _ in range(79):
        clock["now"] += 1.0
        figures["wait"] += 0.5
        assert half.exceeded() is None
    clock["now"] += 4.0
    assert half.exceeded() is not None


def test_budget_ceiling_takes_run_queue_waits_that_come_in_bursts(simulated):
    # The kernel adds a thread's run-queue wait when the thread next runs: a
    # group starved at nice 19 shows no progress for seconds, then all of it.
    # That is not idle time (session 14: a starved iree-compile was stopped as
    # "hung" after 4,485 s with 16.7 s of CPU time). Nor is an interval in
    # which a thread is seen running or waiting to run.
    clock, figures = simulated
    bursts = _toolchain.Budget(1, 10.0)
    for second in range(1, 1001):  # 1,000 s: every 8 s, 8 s of waiting at once
        clock["now"] += 1.0
        if second % 8 == 0:
            figures["cpu"] += 0.001
            figures["wait"] += 7.999
        assert bursts.exceeded() is None
    assert bursts.idle < 8

    seen_waiting = _toolchain.Budget(1, 10.0)
    figures["runnable"] = True
    for _ in range(1000):  # no figure moves, but a thread is runnable
        clock["now"] += 1.0
        assert seen_waiting.exceeded() is None

    # Carried seconds run out: a group that then neither runs nor waits is
    # stopped at most carry seconds later than one that never ran.
    figures["runnable"] = False
    busy_then_hung = _toolchain.Budget(1, 10.0)
    clock["now"] += 1.0
    figures["wait"] += 500.0  # a burst much larger than the interval
    assert busy_then_hung.exceeded() is None
    answers = []
    for _ in range(100):
        clock["now"] += 1.0
        answers.append(busy_then_hung.exceeded())
    first = next(i for i, a in enumerate(answers) if a is not None)
    assert 40 <= first <= 40 + _toolchain.Budget.carry + 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_group_times_tell_runnable_from_blocked_groups():
    busy = subprocess.Popen(
        [sys.executable, "-c", "while True: pass"], start_new_session=True
    )
    blocked = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        time.sleep(0.5)
        assert _toolchain._group_times(busy.pid)[2] is True
        assert _toolchain._group_times(blocked.pid)[2] is False
    finally:
        for p in (busy, blocked):
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.mark.skipif(
    not os.path.exists("/proc/self/schedstat"), reason="no /proc schedstat"
)
def test_group_times_count_run_queue_waits():
    code = "while True: pass"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        for _ in range(3)
    ]
    try:
        time.sleep(1.5)
        # Three busy groups on a host's few CPUs: some wait to run (on two
        # CPUs at least one of the three always does).
        times = [_toolchain._group_times(p.pid) for p in procs]
        assert all(t is not None and t[0] > 0 for t in times)
        if (os.cpu_count() or 1) < 3:
            assert sum(t[1] for t in times) > 0
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_group_cpu_seconds_counts_every_process_of_the_group():
    # Two busy processes in one new session: the group's CPU time grows, and
    # it is more than its leader's own; a group with no process has none.
    code = (
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
        "while True: pass\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        time.sleep(1.0)
        first = _toolchain._group_cpu_seconds(proc.pid)
        time.sleep(1.0)
        with open(f"/proc/{proc.pid}/stat", "rb") as f:
            leader = sum(map(int, f.read().rsplit(b")", 1)[1].split()[11:13]))
        second = _toolchain._group_cpu_seconds(proc.pid)
        assert first is not None and second > first
        assert second > leader / os.sysconf("SC_CLK_TCK")
        pids = {
            int(name)
            for name in os.listdir("/proc")
            if name.isdigit() and os.getpgid(int(name)) == proc.pid
        }
        assert len(pids) == 2
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # A group no process belongs to.
    unused = max(int(name) for name in os.listdir("/proc") if name.isdigit()) + 10**7
    assert _toolchain._group_cpu_seconds(unused) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")
def test_run_tool_child_dies_with_a_killed_caller(tmp_path):
    # A collector killed by a signal must not leave its tool running (the
    # tool leads its own session, so the signal does not reach it).
    started, marker = tmp_path / "tool-started", tmp_path / "tool-survived"
    tool = tmp_path / "tool.py"
    tool.write_text(
        f"import time\nopen({str(started)!r}, 'w').close()\n"
        f"time.sleep(2)\nopen({str(marker)!r}, 'w')\n"
    )
    caller = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from mlircost_classic.collect._toolchain import run_tool; "
            f"run_tool([sys.executable, {str(tool)!r}], timeout=60)",
        ]
    )
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists()
    caller.send_signal(signal.SIGTERM)
    caller.wait(timeout=10)
    time.sleep(2.5)
    assert not marker.exists()


def test_run_tool_missing_binary_is_a_tool_error(tmp_path):
    with pytest.raises(ToolError, match="could not start"):
        run_tool([str(tmp_path / "no-such-tool")], timeout=5)


def test_run_tool_without_io_uring_denies_the_syscall():
    code = (
        "import ctypes; libc = ctypes.CDLL(None, use_errno=True);"
        "r = libc.syscall(425, 4, ctypes.c_void_p(0));"
        "print(r, ctypes.get_errno())"
    )
    run = run_tool([sys.executable, "-c", code], timeout=60, without_io_uring=True)
    assert run.stdout.split() == ["-1", "38"]  # ENOSYS


def test_host_cpu_names_a_model():
    assert host_cpu().strip()
    assert "logical CPUs" in host_cpu()


# --- targets ----------------------------------------------------------------


def test_hardware_table_matches_design():
    assert set(HARDWARE) == {
        "cpu_x86_64_v3",
        "cpu_host",
        "nvidia_sm80",
        "nvidia_sm90",
        "amd_gfx942",
        "nvidia_h100",
        "nvidia_h200",
    }
    # a timed GPU is one entry: the latency backend, and the GPU model it needs
    for gpu in ("H100", "H200"):
        spec = HARDWARE[f"nvidia_{gpu.lower()}"]
        assert (spec.backend, spec.options["gpu_model"]) == ("latency", gpu)
    assert HARDWARE["cpu_x86_64_v3"].deterministic == {
        "instructions",
        "code_bytes",
        "dispatches",
    }
    assert HARDWARE["cpu_host"].needs == "cpu_timing"
    assert HARDWARE["nvidia_h100"].needs == "cuda"
    assert not HARDWARE["cpu_host"].deterministic
    for spec in HARDWARE.values():
        assert spec.deterministic <= set(spec.metrics)
        assert set(spec.kernel_metrics) <= set(spec.metrics)


def test_target_names():
    assert target_names(["nvidia_sm80"]) == [
        "nvidia_sm80.registers",
        "nvidia_sm80.spill_bytes",
        "nvidia_sm80.stack_bytes",
        "nvidia_sm80.shared_bytes",
        "nvidia_sm80.occupancy",
    ]
    assert len(target_names()) == sum(len(h.metrics) for h in HARDWARE.values())
    with pytest.raises(ValueError, match="unknown hardware"):
        target_names(["tpu"])
    with pytest.raises(TypeError):
        target_names("cpu_host")


# --- GPU parsers and occupancy -----------------------------------------------

PTX = """
.visible .entry k_a(
\t.param .u64 .ptr .global .align 16 k_a_param_0
)
.maxntid 32, 8, 1
{
\tret;
}
.visible .entry k_b(
\t.param .u64 k_b_param_0
)
.reqntid 64, 1, 1
{
\tret;
}
.visible .entry k_c()
{
\tret;
}
"""


def test_ptx_threads_per_block():
    assert ptx_threads_per_block(PTX) == {"k_a": 256, "k_b": 64}


@pytest.mark.parametrize(
    ("arch", "regs", "smem", "threads", "expected"),
    [
        # 8 warps; 43 regs -> 1536 per warp -> 5 blocks by registers: 40/64.
        ("sm_80", 43, 0, 256, 40 / 64),
        # 32 regs, 4 warps: 16 blocks fit every limit -> full occupancy.
        ("sm_80", 32, 0, 128, 1.0),
        # 48 KiB + 1 KiB reserved: 3 blocks on sm_80 (164 KiB), 4 on sm_90.
        ("sm_80", 32, 48 * 1024, 128, 12 / 64),
        ("sm_90", 32, 48 * 1024, 128, 16 / 64),
        # One thread per block is capped by the 32 blocks per SM.
        ("sm_90", 16, 0, 1, 32 / 64),
        # 255 registers and 1024 threads do not fit on an SM.
        ("sm_80", 255, 0, 1024, 0.0),
    ],
)
def test_nvidia_occupancy(arch, regs, smem, threads, expected):
    assert nvidia_occupancy(arch, regs, smem, threads) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("vgprs", "sgprs", "lds", "threads", "expected"),
    [
        (17, 18, 0, 64, 1.0),
        (141, 24, 0, 256, 3 / 8),  # 512 // 144 = 3 waves
        (17, 18, 2304, 64, 7 / 8),  # 28 groups * 1 wave / 4 SIMDs
        (36, 23, 50176, 256, 1 / 8),  # one group of 4 waves over 4 SIMDs
        (36, 23, 50176, 64, 1 / 8),  # one single-wave group still fills a SIMD
        (36, 23, 70000, 64, 0.0),  # more LDS than a CU has: cannot launch
    ],
)
def test_amd_occupancy(vgprs, sgprs, lds, threads, expected):
    assert amd_occupancy("gfx942", vgprs, sgprs, lds, threads) == pytest.approx(
        expected
    )


ROCM_ASM = """
\t.amdgcn_target "amdgpu9.42-amd-amdhsa-unknown-gfx942"
\t.amdgpu_metadata
---
amdhsa.kernels:
  - .agpr_count:     0
    .args:
      - .actual_access:  read_only
        .offset:         0
        .size:           8
    .group_segment_fixed_size: 2304
    .max_flat_workgroup_size: 64
    .name:           disp_0
    .private_segment_fixed_size: 16
    .reqd_workgroup_size:
      - 64
      - 2
      - 1
    .sgpr_count:     18
    .sgpr_spill_count: 1
    .vgpr_count:     17
    .vgpr_spill_count: 2
    .wavefront_size: 64
  - .name:           disp_1
    .max_flat_workgroup_size: 256
    .vgpr_count:     40
    .sgpr_count:     20
amdhsa.target:   amdgpu9.42-amd-amdhsa-unknown-gfx942
amdhsa.version:
  - 1
  - 2
...
\t.end_amdgpu_metadata
"""


def test_amdgpu_metadata():
    meta = amdgpu_metadata(ROCM_ASM)
    assert set(meta) == {"disp_0", "disp_1"}
    assert meta["disp_0"]["vgpr_count"] == 17
    assert meta["disp_0"]["sgpr_count"] == 18
    assert meta["disp_0"]["vgpr_spill_count"] == 2
    assert meta["disp_0"]["group_segment_fixed_size"] == 2304
    assert meta["disp_0"]["private_segment_fixed_size"] == 16
    assert meta["disp_0"]["threads_per_block"] == 128
    assert "size" not in meta["disp_0"]  # argument fields are not kernel fields
    assert meta["disp_1"]["threads_per_block"] == 256


def test_amdgpu_metadata_missing_is_a_tool_error():
    with pytest.raises(ToolError, match="no amdhsa.kernels"):
        amdgpu_metadata("\t.text\n")


# --- CPU parsers -------------------------------------------------------------

CALLGRIND = """# callgrind format
version: 1
positions: line
events: Ir
summary: 1000

fl=(1) rt.c
fn=(1) iree_vm_invoke
5 100
cfi=(2) k.mlir
cfn=(2) disp_0
calls=3 0
7 600
cfn=(3) disp_1
calls=1 0
+1 250
+1 50

fl=(2)
fn=(2)
0 500
fi=(3) inlined.h
0 60
cfn=(4) memset
calls=1 0
0 40

fn=(3) disp_1
0 250

totals: 1000
"""


def test_read_callgrind_inclusive_counts(tmp_path):
    path = tmp_path / "callgrind.out"
    path.write_text(CALLGRIND)
    total, inclusive = read_callgrind(path, ["disp_0", "disp_1", "iree_vm_invoke"])
    assert total == 1000
    # self 500 + inlined 60 + call to memset 40
    assert inclusive == {"disp_0": 600, "disp_1": 250, "iree_vm_invoke": 1000}


def test_read_callgrind_without_total_is_a_tool_error(tmp_path):
    path = tmp_path / "callgrind.out"
    path.write_text("events: Ir\n")
    with pytest.raises(ToolError, match="no total"):
        read_callgrind(path)


def test_write_inputs_is_deterministic(tmp_path):
    types = ["tensor<2x3xf32>", "tensor<4xi64>", "tensor<2xbf16>", "i32", "f32"]
    flags = write_inputs(types, tmp_path / "a", seed=0)
    again = write_inputs(types, tmp_path / "b", seed=0)
    assert (
        flags
        == again
        == [
            "2x3xf32=@input0.bin",
            "4xi64=@input1.bin",
            "2xbf16=@input2.bin",
            "1",
            "0.5",
        ]
    )
    for name in ("input0.bin", "input1.bin", "input2.bin"):
        assert (tmp_path / "a" / name).read_bytes() == (
            tmp_path / "b" / name
        ).read_bytes()
    floats = np.fromfile(tmp_path / "a" / "input0.bin", dtype=np.float32)
    assert floats.shape == (6,) and len(set(floats.tolist())) == 6
    ints = np.fromfile(tmp_path / "a" / "input1.bin", dtype=np.int64)
    assert set(ints.tolist()) <= {0, 1}
    assert (tmp_path / "a" / "input2.bin").stat().st_size == 4


@pytest.mark.parametrize("bad", ["tensor<?x4xf32>", "tensor<4xcomplex<f32>>"])
def test_write_inputs_rejects_what_it_cannot_make(tmp_path, bad):
    with pytest.raises(ToolError, match="cannot make an input"):
        write_inputs([bad], tmp_path)


def test_elf_code_bytes_of_the_python_binary():
    assert elf_code_bytes(sys.executable) > 0


def test_elf_code_bytes_rejects_other_files(tmp_path):
    path = tmp_path / "x.so"
    path.write_bytes(b"not an elf file")
    with pytest.raises(ValueError, match="ELF"):
        elf_code_bytes(path)


def test_benchmark_samples_us():
    report = {
        "context": {},
        "benchmarks": [
            {"run_type": "iteration", "real_time": 0.5, "time_unit": "ms"},
            {"run_type": "iteration", "real_time": 700.0, "time_unit": "ns"},
            {"run_type": "aggregate", "real_time": 0.6, "time_unit": "ms"},
        ],
    }
    text = "some banner\n" + json.dumps(report)
    assert benchmark_samples_us(text) == pytest.approx([500.0, 0.7])
    with pytest.raises(ToolError):
        benchmark_samples_us('{"benchmarks": []}')
    with pytest.raises(ToolError):
        benchmark_samples_us("no json here")


def test_read_callgrind_counts_calls_of_the_named_functions(tmp_path):
    path = tmp_path / "callgrind.out"
    path.write_text(CALLGRIND)
    calls = {}
    read_callgrind(path, ["disp_0", "disp_1", "memset"], calls=calls)
    # disp_0 is called 3 times, disp_1 once; memset is called once by disp_0
    assert calls == {"disp_0": 3, "disp_1": 1, "memset": 1}


def test_a_failure_keeps_the_error_lines_before_the_dump_that_follows():
    # IREE prints the diagnostic, then the op it is about: often a whole module.
    code = (
        "import sys\n"
        "sys.stderr.write('input.mlir:3:5: error: write affecting operations on "
        "global resources are restricted\\n')\n"
        "sys.stderr.write('input.mlir:3:5: note: see current operation:\\n')\n"
        "for i in range(500):\n"
        "    sys.stderr.write('  %%%d = arith.addf ' % i + 'x' * 80 + '\\n')\n"
        "sys.exit(1)\n"
    )
    with pytest.raises(ToolError) as info:
        run_tool([sys.executable, "-c", code], timeout=60)
    message = str(info.value)
    first = message.split(": ", 1)[1].splitlines()[0]
    assert first == (
        "input.mlir:3:5: error: write affecting operations on "
        "global resources are restricted"
    )
    assert "%499 = arith.addf" in message and "%400 " not in message
    assert message.count("error:") == 1
