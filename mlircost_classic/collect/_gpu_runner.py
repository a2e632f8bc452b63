"""Time a GPU batch with ``iree-benchmark-module --device=cuda``.

A standalone script for a machine with an NVIDIA GPU, which may have neither
this package nor numpy: it uses the Python standard library alone.

    python3 _gpu_runner.py BATCH_DIR OUT_JSONL --benchmark-binary PATH

``BATCH_DIR`` is what :func:`mlircost_classic.collect._gpu_batch.export_gpu_batch`
wrote. For each module of its manifest one JSON line is appended to
``OUT_JSONL`` and flushed, so a run killed midway keeps what it measured: id,
``latency_us`` (median of the per-repetition mean times), ``spread``
(interquartile range / median), the samples, GPU name, driver, CUDA driver
version, the command, or ``error``. Modules already in ``OUT_JSONL`` are
skipped, so the same command resumes a killed run.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

__all__ = ["benchmark_samples_us", "gpu_info", "main", "spread", "time_module"]

_TIME_UNITS_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
_MAX_ERROR = 2000


def benchmark_samples_us(report: str) -> list[float]:
    """Per-repetition times (us) of a Google Benchmark JSON report.

    The same reading as ``_measure_cpu.benchmark_samples_us``, which this
    script cannot import.
    """
    try:
        data = json.loads(report[report.index("{") :])
        samples = [
            b["real_time"] * _TIME_UNITS_US[b["time_unit"]]
            for b in data["benchmarks"]
            if b.get("run_type") == "iteration"
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"unreadable benchmark report: {exc}") from exc
    if not samples:
        raise ValueError("the benchmark reported no repetitions")
    return samples


def spread(samples: list[float]) -> float:
    """Interquartile range relative to the median (numpy's linear quantiles)."""
    median = statistics.median(samples)
    if len(samples) < 2 or median <= 0:
        return 0.0
    q25, _, q75 = statistics.quantiles(samples, n=4, method="inclusive")
    return (q75 - q25) / median


def _cuda_driver_version() -> str | None:
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        version = ctypes.c_int()
        if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return f"{version.value // 1000}.{version.value % 1000 // 10}"


def gpu_info() -> dict:
    """GPU name, driver, memory (``nvidia-smi``) and CUDA driver version."""
    args = [
        "nvidia-smi",
        "--query-gpu=name,driver_version,memory.total",
        "--format=csv,noheader",
    ]
    info = {"gpu": None, "driver": None, "memory": None}
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=60)
        first = out.stdout.strip().splitlines()[0]
        info["gpu"], info["driver"], info["memory"] = (
            f.strip() for f in first.split(",", 2)
        )
    except (OSError, subprocess.SubprocessError, IndexError, ValueError) as exc:
        info["gpu_error"] = f"nvidia-smi: {exc}"
    info["cuda_driver"] = _cuda_driver_version()
    return info


def time_module(
    binary: str,
    batch_dir: str,
    module: dict,
    *,
    repetitions: int,
    min_time: float,
    timeout: float,
) -> dict:
    """Benchmark one manifest entry; never raises for a failed run."""
    args = [
        binary,
        "--device=cuda",
        f"--module={module['vmfb']}",
        f"--function={module['function']}",
        *(f"--input={v}" for v in module["inputs"]),
        f"--benchmark_repetitions={repetitions}",
        f"--benchmark_min_time={min_time:g}s",
        "--benchmark_format=json",
    ]
    result = {
        "id": module["id"],
        "function": module["function"],
        "command": [os.path.basename(binary), *args[1:]],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    start = time.perf_counter()
    try:
        run = subprocess.run(
            args, cwd=batch_dir, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        result["error"] = f"timed out after {timeout:g} s"
        return result
    except OSError as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        return result
    finally:
        result["seconds"] = round(time.perf_counter() - start, 3)
    if run.returncode != 0:
        tail = (run.stderr or run.stdout).strip()[-_MAX_ERROR:]
        result["error"] = f"exit status {run.returncode}: {tail}"
        return result
    try:
        samples = benchmark_samples_us(run.stdout)
    except ValueError as exc:
        result["error"] = str(exc)
        return result
    result.update(
        latency_us=statistics.median(samples),
        spread=spread(samples),
        samples_us=[round(s, 4) for s in samples],
        repetitions=len(samples),
    )
    return result


def _done(path: str) -> set[str]:
    if not os.path.exists(path):
        return set()
    ids = set()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "latency_us" in rec:
                ids.add(rec["id"])
    return ids


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("batch_dir")
    parser.add_argument("out_jsonl")
    parser.add_argument("--benchmark-binary", required=True)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--limit", type=int, default=None)
    ns = parser.parse_args(argv)
    with open(os.path.join(ns.batch_dir, "manifest.json"), encoding="utf-8") as fh:
        modules = json.load(fh)["modules"]
    info = gpu_info()
    print(json.dumps(info), flush=True)
    done = _done(ns.out_jsonl)
    todo = [m for m in modules if m["id"] not in done][: ns.limit]
    binary = os.path.abspath(ns.benchmark_binary)
    measured = failed = 0
    with open(ns.out_jsonl, "a", encoding="utf-8") as out:
        for i, module in enumerate(todo, start=1):
            result = time_module(
                binary,
                ns.batch_dir,
                module,
                repetitions=ns.repetitions,
                min_time=ns.min_time,
                timeout=ns.timeout,
            )
            result.update(info)
            out.write(json.dumps(result, sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())
            ok = "error" not in result
            measured += ok
            failed += not ok
            what = f"{result['latency_us']:.2f} us" if ok else result["error"][:200]
            print(f"[{i}/{len(todo)}] {module['id'][:12]} {what}", flush=True)
    print(f"measured {measured}, failed {failed}, skipped {len(done)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
