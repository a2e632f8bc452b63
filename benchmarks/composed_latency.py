"""One-module prediction latency of the composed path (the < 3 ms goal).

Prints, for the median-size bundled linalg module (and, for scale, the
median-size module of the OOD suite, a real network), the median over 100
calls (after 5 warm-up calls) of :class:`ComposedCostModel.predict` from text,
of the partitioner alone (reading included), of the shipped kernels model on the
module's dispatch regions as the composed path runs it (``compose_regions``:
reading the regions with ``read_region``, featurizing, the forest, aggregating)
and of its reading alone: wall time, and the process's CPU time, which a shared
host's other jobs do not inflate as much. With the host CPU and load average.
Run from the repository root::

    python benchmarks/composed_latency.py
"""

import os
import time

import numpy as np

import mlircost_classic as mc
from mlircost_classic.featurize import partition_dispatches
from mlircost_classic.featurize._partition import read_region
from mlircost_classic.models import ComposedCostModel, compose_regions


def _medians(function, repeats: int = 100, warmup: int = 5) -> tuple[float, float]:
    """Median wall and CPU seconds of one call."""
    for _ in range(warmup):
        function()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return float(np.median(wall)), float(np.median(cpu))


def _median_module(suite: str) -> tuple[str, np.ndarray, list]:
    ds = mc.load_dataset("modules", level="linalg", suite=suite)
    order = np.argsort([len(t) for t in ds.data], kind="stable")
    median = int(order[len(order) // 2])
    return ds.data[median], ds.target[[median]], list(ds.target_names)


def main() -> None:
    cpu = "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print(f"host: {cpu}, {os.cpu_count()} logical CPUs, load {os.getloadavg()}")
    for suite, repeats in (("main", 100), ("ood", 10)):
        _report(suite, repeats)


def _report(suite: str, repeats: int) -> None:
    text, y, names = _median_module(suite)
    model = ComposedCostModel(calibrate=False).fit([text], y, names)
    kernels = model.kernel_model_
    regions = partition_dispatches(text)
    print(
        f"median-size {suite} module: {len(text)} characters, "
        f"{len(regions)} dispatch regions (wall / CPU ms)"
    )
    for what, function in (
        ("composed predict from text", lambda: model.predict([text])),
        ("partition alone (parse included)", lambda: partition_dispatches(text)),
        (
            "kernels model on the regions",
            lambda: compose_regions(kernels, [regions], names),
        ),
        ("  of it, reading them", lambda: [read_region(r.text) for r in regions]),
    ):
        wall, used = _medians(function, repeats)
        print(f"  {what:34s} {wall * 1e3:8.2f} {used * 1e3:8.2f}")


if __name__ == "__main__":
    main()
