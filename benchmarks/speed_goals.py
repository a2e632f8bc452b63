"""Every row of the speed goals (issue 17), measured in one run on the same texts.

Rows, each printed with its goal:

* ``MLIRFeaturizer().fit_transform`` throughput over MLIR's C++ parser
  (``iree.compiler.ir.Module.parse``) on the same texts: the shared corpus
  (``../shared/mlir-corpus``), the 6-layer encoder of ``featurize_speed.py`` at
  linalg and StableHLO (needs torch-mlir; ``--skip-encoder``), and large real
  networks (the bundled linalg modules of 100 KB or more, both suites);
* ``predict`` of one median-size bundled module with the shipped linalg model,
  and of one median-size kernel with the shipped kernels model (median over
  ``--calls`` calls);
* batch prediction of bundled kernels per second (``--batch`` of them, after a
  warm-up batch), on one core and with ``n_jobs=2`` featurization;
* fitting the default modules model (``CostModel(n_jobs=2)``) on the bundled
  linalg modules (``--skip-fit`` leaves it out);
* peak RSS of a fresh process featurizing the whole bundled kernel set;
* the wall time of ``mlircost predict`` on the README's example module in a
  fresh process (imports and model loading included; no goal).

The host CPU and load average are printed first. Rows measured in this one
process (throughput, one-module and one-kernel ``predict``, batch on one core)
are timed in process CPU time (``time.process_time``): on a machine shared
with other jobs, wall time measures the other jobs as much as this code. The
``n_jobs=2`` and fit rows use worker processes and are timed in wall time;
the one-core batch row gives its wall time too, and the ``n_jobs=2`` row its
ratio to it (wall over wall: on a loaded host, comparing it with the one-core
CPU time makes the workers look slower than one core); the fit row gives the
CPU time of this process and its workers too.
Compare ratios from one run, not figures across runs. Run from the repository
root::

    python benchmarks/speed_goals.py [--repeat 3] [--skip-encoder] [--skip-fit]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from featurize_speed import (
    CORPUS,
    accepted_by_cpp,
    best_time,
    corpus_texts,
    host_cpu,
    model_texts,
)
from joblib.externals.loky import get_reusable_executor

import mlircost_classic as mc
from mlircost_classic.featurize import MLIRFeaturizer
from mlircost_classic.featurize._base import PARALLEL_CHUNK
from mlircost_classic.models._evaluate import _median_seconds

__all__ = ["main"]

#: The clock of the rows measured in this process.
CPU = time.process_time

# The child's own peak is VmHWM: Linux carries ru_maxrss over from the parent
# through fork and exec, so after the fit row it reported the parent's peak.
_RSS_CHILD = """
import resource
import mlircost_classic as mc
texts = mc.load_dataset("kernels").data
mc.MLIRFeaturizer().fit_transform(texts)
try:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(texts), peak)
"""


def throughput_ratio(texts: list[str], repeat: int) -> tuple[float, str]:
    """Our MB/s over the C++ parser's on the texts it accepts."""
    from iree.compiler import ir

    ok, rejected = accepted_by_cpp(texts)
    mb = sum(len(t.encode()) for t in ok) / 1e6

    def cpp():
        ctx = ir.Context()
        ctx.allow_unregistered_dialects = True
        for text in ok:
            ir.Module.parse(text, ctx)

    t_cpp = best_time(cpp, repeat, CPU)
    t_ours = best_time(lambda: MLIRFeaturizer().fit_transform(ok), repeat, CPU)
    detail = (
        f"{mb / t_ours:.1f} vs {mb / t_cpp:.1f} MB/s CPU time, {len(ok)} texts, "
        f"{mb * 1e3:.0f} KB, {rejected} rejected by the C++ parser"
    )
    return t_cpp / t_ours, detail


def median_text(texts) -> str:
    order = np.argsort([len(t) for t in texts], kind="stable")
    return texts[int(order[len(order) // 2])]


def large_networks() -> list[str]:
    texts = []
    for suite in ("main", "ood"):
        data = mc.load_dataset("modules", level="linalg", suite=suite).data
        texts.extend(t for t in data if len(t) >= 100_000)
    return texts


def kernels_per_second(model, texts: list[str], n_jobs) -> tuple[float, float]:
    """Kernels predicted per second in CPU and in wall time, after a warm-up call.

    The warm-up starts joblib's workers (and their imports), as the first batch
    of a search does; the batches after it reuse them. The CPU time is this
    process's only: with workers, only the wall time counts their work.
    """
    n_jobs_before = model.n_jobs
    model.set_params(n_jobs=n_jobs)  # the targets' trees, in threads
    model.featurizer_.set_params(n_jobs=n_jobs)  # reading, in processes
    try:
        model.predict(texts[: 2 * PARALLEL_CHUNK])
        start, start_wall = CPU(), time.perf_counter()
        model.predict(texts)
        cpu, wall = CPU() - start, time.perf_counter() - start_wall
        return len(texts) / cpu, len(texts) / wall
    finally:
        model.set_params(n_jobs=n_jobs_before)
        model.featurizer_.set_params(n_jobs=None)


def _children_cpu() -> float:
    """CPU seconds of this process's ended children, after ending joblib's workers.

    Workers count in ``RUSAGE_CHILDREN`` only once they have exited and been
    waited for, which shutting down joblib's reusable executor does.
    """
    get_reusable_executor().shutdown(wait=True)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fit_seconds() -> tuple[float, float]:
    """Wall and CPU seconds (this process and its workers) of the default fit."""
    data = mc.load_dataset("modules", level="linalg")
    start, start_cpu = time.perf_counter(), CPU() + _children_cpu()
    mc.CostModel(n_jobs=2, random_state=0).fit(data.data, data.target)
    wall = time.perf_counter() - start
    return wall, CPU() + _children_cpu() - start_cpu


#: The README's example module, which ``first_answer_seconds`` predicts.
EXAMPLE = "examples/mlp_linalg.mlir"

_MET = {True: "yes", False: "no", None: "-"}


def first_answer_seconds(repeat: int = 3) -> float:
    """Median wall seconds of ``mlircost predict EXAMPLE`` in a fresh process.

    What a user waits for at the command line: the imports, loading the
    shipped models that answer for a linalg module (the kernels, stacked and
    modules models) and one prediction.
    """
    example = Path(__file__).resolve().parents[1] / EXAMPLE
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "mlircost_classic.cli", "predict", str(example)],
            capture_output=True,
            check=True,
        )
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def peak_rss_mb() -> tuple[int, float]:
    out = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[0]), int(out[1]) / 1024  # VmHWM and ru_maxrss are in KiB


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--skip-encoder", action="store_true")
    parser.add_argument("--skip-fit", action="store_true")
    args = parser.parse_args(argv)
    print(f"host CPU: {host_cpu()}, {os.cpu_count()} logical CPUs")
    print(f"load average at start: {os.getloadavg()}")
    rows = []  # (figure, measured, goal, met, detail)

    def ratio_row(figure, texts, goal):
        ratio, detail = throughput_ratio(texts, args.repeat)
        rows.append((figure, f"{ratio:.2f}x", f">= {goal}x", ratio >= goal, detail))

    if CORPUS.is_dir():
        ratio_row("featurize / C++ parser, shared corpus", corpus_texts(), 1.0)
    else:
        print(f"corpus not found at {CORPUS}: its row is left out")
    if not args.skip_encoder:
        for level, text in model_texts().items():
            if level != "tosa":
                ratio_row(f"same, 6-layer encoder ({level})", [text], 1.5)
    ratio_row("same, large real networks (linalg)", large_networks(), 1.0)

    modules = mc.load_pretrained("modules", "linalg")
    kernels = mc.load_pretrained("kernels")
    module = median_text(mc.load_dataset("modules", level="linalg").data)
    kernel_texts = list(mc.load_dataset("kernels").data)
    kernel = median_text(kernel_texts)
    for figure, model, text, goal in (
        ("one module, linalg model, predict", modules, module, 0.7),
        ("one kernel, kernels model, predict", kernels, kernel, 0.4),
    ):
        ms = _median_seconds(
            lambda m=model, t=text: m.predict([t]), args.calls, 10, CPU
        )
        ms *= 1e3
        detail = f"median of {args.calls} calls (CPU time), {len(text)} chars"
        rows.append((figure, f"{ms:.2f} ms", f"< {goal} ms", ms < goal, detail))

    batch = np.random.default_rng(0).permutation(len(kernel_texts))[: args.batch]
    batch = [kernel_texts[i] for i in batch]
    # The n_jobs=2 row is in wall time: compare it with one core's wall time in
    # the same run, not with its CPU time (on a loaded host, wall time is
    # several times the CPU time whatever the code does).
    rate, one_core_wall = kernels_per_second(kernels, batch, None)
    _, rate_2 = kernels_per_second(kernels, batch, 2)
    for figure, value, detail in (
        ("one core", rate, f"CPU time ({one_core_wall:,.0f} /s wall time)"),
        ("n_jobs=2", rate_2, f"wall time, {rate_2 / one_core_wall:.2f}x one core's"),
    ):
        rows.append(
            (
                f"batch prediction, kernels, {figure}",
                f"{value:,.0f} /s",
                ">= 10,000 /s",
                value >= 10_000,
                f"{len(batch)} bundled kernels, {detail}",
            )
        )
    if not args.skip_fit:
        seconds, cpu = fit_seconds()
        rows.append(
            (
                "fit the default modules model, 2 cores",
                f"{seconds:.1f} s",
                "< 60 s",
                seconds < 60,
                f"CostModel(n_jobs=2), bundled linalg modules, wall time "
                f"({cpu:.1f} s CPU time, this process and its workers)",
            )
        )
    seconds = first_answer_seconds()
    rows.append(
        (
            "`mlircost predict` of one module, fresh process",
            f"{seconds:.2f} s",
            "-",
            None,
            f"wall time, median of 3: imports, loading the shipped models of the "
            f"linalg answer, predicting {EXAMPLE}",
        )
    )
    n, rss = peak_rss_mb()
    rows.append(
        (
            "peak RSS, featurizing the bundled kernels",
            f"{rss:,.0f} MB",
            "< 1,024 MB",
            rss < 1024,
            f"{n} kernels, fresh process, imports included",
        )
    )
    print(f"load average at end: {os.getloadavg()}")
    print("| figure | measured | goal | met | detail |")
    print("|---|---:|---:|---|---|")
    for figure, measured, goal, met, detail in rows:
        print(f"| {figure} | {measured} | {goal} | {_MET.get(met)} | {detail} |")


if __name__ == "__main__":
    main()
