"""One-module prediction latency of the shipped linalg model (the < 1 ms goal).

Prints, for the median-size and the smallest bundled linalg module and for
``examples/mlp_linalg.mlir``, the median over 500 calls (after 10 warm-up
calls) of ``predict`` from text, ``predict_interval(..., return_prediction=True)``,
parsing alone and ``predict`` from an already parsed module, with the host
CPU and load average. Run from the repository root::

    python benchmarks/predict_latency.py
"""

import os

import numpy as np

import mlircost_classic as mc
from mlircost_classic.models._evaluate import _median_seconds


def median_ms(function, calls: int = 500, warmup: int = 10) -> float:
    # The same timing as evaluate()'s latency_one_ms.
    return _median_seconds(function, calls, warmup) * 1e3


def main() -> None:
    model = mc.load_pretrained("modules", "linalg")
    texts = mc.load_dataset("modules", level="linalg").data
    order = np.argsort([len(t) for t in texts], kind="stable")
    cases = {
        "median-size bundled module": texts[int(order[len(order) // 2])],
        "smallest bundled module": texts[int(order[0])],
        "examples/mlp_linalg.mlir": open("examples/mlp_linalg.mlir").read(),
    }
    cpu = "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print(f"host: {cpu}, {os.cpu_count()} logical CPUs, load {os.getloadavg()}")
    for name, text in cases.items():
        print(f"{name} ({len(text)} chars): " + ", ".join(measure(model, text)))


def measure(model, text: str) -> list[str]:
    parsed = mc.parse(text)
    timings = {
        "predict": lambda: model.predict([text]),
        "predict + interval": lambda: model.predict_interval(
            [text], return_prediction=True
        ),
        "parse": lambda: mc.parse(text),
        "predict from parsed": lambda: model.predict([parsed]),
    }
    return [f"{label} {median_ms(call):.2f} ms" for label, call in timings.items()]


if __name__ == "__main__":
    main()
