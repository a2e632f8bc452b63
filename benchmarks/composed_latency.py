"""One-module prediction latency of the composed path (the < 3 ms goal).

Prints, for the median-size bundled linalg module, the median over 100 calls
(after 5 warm-up calls) of :class:`ComposedCostModel.predict` from text, of the
partitioner alone (reading included) and of the shipped kernels model on the
module's dispatch texts, with the host CPU and load average. Run from the
repository root::

    python benchmarks/composed_latency.py
"""

import os

import numpy as np

import mlircost_classic as mc
from mlircost_classic.featurize import partition_dispatches
from mlircost_classic.models import ComposedCostModel
from mlircost_classic.models._evaluate import _median_seconds


def main() -> None:
    ds = mc.load_dataset("modules", level="linalg")
    order = np.argsort([len(t) for t in ds.data], kind="stable")
    median = int(order[len(order) // 2])
    text = ds.data[median]
    names = list(ds.target_names)
    model = ComposedCostModel(calibrate=False).fit([text], ds.target[[median]], names)
    kernels = model.kernel_model_
    regions = [r.text for r in partition_dispatches(text)]
    cpu = "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print(f"host: {cpu}, {os.cpu_count()} logical CPUs, load {os.getloadavg()}")
    print(
        f"median-size module: {len(text)} characters, {len(regions)} dispatch regions"
    )
    for what, function in (
        ("composed predict from text", lambda: model.predict([text])),
        ("partition alone (parse included)", lambda: partition_dispatches(text)),
        ("kernels model on the regions", lambda: kernels.predict(regions)),
    ):
        print(f"  {what:34s} {_median_seconds(function, 100, 5) * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
