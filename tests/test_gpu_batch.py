"""Tests of the GPU latency batches: export, standalone runner, import."""

import json
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlircost_classic.collect import _gpu_runner as runner
from mlircost_classic.collect._gpu_batch import (
    AMENDMENTS_FILE,
    export_gpu_batch,
    gpu_hardware_name,
    import_gpu_results,
)
from mlircost_classic.datasets import (
    append_records,
    complete_record,
    load_dataset,
    validate_amendment,
)

RUNNER = Path(runner.__file__)

# The report of a real `iree-benchmark-module --device=cuda
# --benchmark_repetitions=5 --benchmark_min_time=0.2s --benchmark_format=json`
# run on an NVIDIA H100 80GB HBM3 (driver 580.159.04) of a bmm module, with
# fields the reader ignores left out and the last three aggregates dropped.
CANNED = """{
 "context": {"date": "2026-11-25T10:03:57+00:00", "num_cpus": 16,
             "library_version": "v1.9.5"},
 "benchmarks": [
  {"name": "BM_main/process_time/real_time", "run_type": "iteration",
   "repetitions": 5, "repetition_index": 0, "iterations": 1517,
   "real_time": 0.1815434864864667, "cpu_time": 0.17768070138430947,
   "time_unit": "ms"},
  {"name": "BM_main/process_time/real_time", "run_type": "iteration",
   "repetitions": 5, "repetition_index": 1, "iterations": 1517,
   "real_time": 0.20016713183916965, "cpu_time": 0.19410569742913233,
   "time_unit": "ms"},
  {"name": "BM_main/process_time/real_time", "run_type": "iteration",
   "repetitions": 5, "repetition_index": 2, "iterations": 1517,
   "real_time": 0.19861674093610138, "cpu_time": 0.1920167270929468,
   "time_unit": "ms"},
  {"name": "BM_main/process_time/real_time", "run_type": "iteration",
   "repetitions": 5, "repetition_index": 3, "iterations": 1517,
   "real_time": 0.18855110481220005, "cpu_time": 0.1841532610415266,
   "time_unit": "ms"},
  {"name": "BM_main/process_time/real_time", "run_type": "iteration",
   "repetitions": 5, "repetition_index": 4, "iterations": 1517,
   "real_time": 0.1832662887277335, "cpu_time": 0.17951562030323193,
   "time_unit": "ms"},
  {"name": "BM_main/process_time/real_time_mean", "run_type": "aggregate",
   "repetitions": 5, "iterations": 5, "real_time": 0.19042895056033426,
   "cpu_time": 0.1854944014502294, "time_unit": "ms"}
 ]
}"""
SAMPLES = [181.5434864864667, 200.16713183916965, 198.61674093610138]
SAMPLES += [188.55110481220005, 183.2662887277335]

TEXT = (
    "func.func @main(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {\n"
    "  %0 = arith.addf %a, %b : tensor<4xf32>\n"
    "  return %0 : tensor<4xf32>\n"
    "}\n"
)


def module(n=0, text=TEXT, targets=None, **extra):
    rec = {
        "kind": "module",
        "key": f"k{n}",
        "family": "elementwise",
        "params": {"n": n},
        "ir": {"linalg": text + f"// {n}\n"},
        "compiled_level": "linalg",
        "targets": {"cpu_x86_64_v3.instructions": 10.0 + n}
        if targets is None
        else targets,
        "kernels": [],
        "provenance": {},
        "status": "ok",
        "failures": [],
        "seconds": {},
    }
    rec.update(extra)
    return complete_record(rec)


# --- the standalone runner ------------------------------------------------------------


def test_runner_reads_a_real_report():
    samples = runner.benchmark_samples_us("log line before the report\n" + CANNED)
    np.testing.assert_allclose(samples, SAMPLES)
    q25, q75 = np.percentile(samples, [25, 75])
    assert runner.spread(samples) == pytest.approx((q75 - q25) / np.median(samples))
    assert runner.spread([5.0]) == 0.0


def test_runner_reads_as_the_collector_does():
    pytest.importorskip("numpy")
    from mlircost_classic.collect._measure_cpu import benchmark_samples_us

    assert runner.benchmark_samples_us(CANNED) == benchmark_samples_us(CANNED)


@pytest.mark.parametrize(
    "report", ["", "{}", '{"benchmarks": [{"run_type": "aggregate"}]}']
)
def test_runner_refuses_bad_reports(report):
    with pytest.raises(ValueError, match="benchmark"):
        runner.benchmark_samples_us(report)


def _fake_binary(folder: Path, body: str) -> Path:
    path = folder / "fake-benchmark"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _batch(folder: Path, ids) -> Path:
    batch = folder / "batch"
    batch.mkdir()
    modules = [
        {
            "id": i,
            "function": "main",
            "inputs": ["4xf32=@inputs/x/input0.bin"],
            "vmfb": f"{i}.vmfb",
        }
        for i in ids
    ]
    (batch / "manifest.json").write_text(json.dumps({"modules": modules}))
    return batch


def test_runner_script_runs_alone_and_resumes(tmp_path):
    (tmp_path / "canned.json").write_text(CANNED)
    binary = _fake_binary(
        tmp_path,
        f'case "$2" in *bad*) echo broken >&2; exit 3;; esac; cat {tmp_path}/canned.json',
    )
    batch = _batch(tmp_path, ["a" * 64, "bad" + "b" * 61])
    out = tmp_path / "results.jsonl"
    # -I: no site packages, no current folder: the script must need neither.
    args = [sys.executable, "-I", str(RUNNER), str(batch), str(out)]
    args += ["--benchmark-binary", str(binary), "--repetitions", "5"]
    run = subprocess.run(args, capture_output=True, text=True, check=True)
    assert "measured 1, failed 1" in run.stdout
    first, second = [json.loads(line) for line in out.read_text().splitlines()]
    assert first["latency_us"] == pytest.approx(np.median(SAMPLES))
    assert first["repetitions"] == 5 and first["command"][0] == "fake-benchmark"
    assert "--device=cuda" in first["command"]
    assert "--input=4xf32=@inputs/x/input0.bin" in first["command"]
    assert "gpu" in first and "driver" in first
    assert second["error"].startswith("exit status 3: broken")
    # A second run redoes only the module that has no latency.
    run = subprocess.run(args, capture_output=True, text=True, check=True)
    assert "measured 0, failed 1, skipped 1" in run.stdout


def test_runner_times_out(tmp_path):
    binary = _fake_binary(tmp_path, "sleep 5")
    batch = _batch(tmp_path, ["a" * 64])
    result = runner.time_module(
        str(binary),
        str(batch),
        {"id": "a", "function": "main", "inputs": [], "vmfb": "a.vmfb"},
        repetitions=1,
        min_time=0.1,
        timeout=0.2,
    )
    assert result["error"] == "timed out after 0.2 s"


# --- import ------------------------------------------------------------------------


def _result(rid, gpu="NVIDIA H100 80GB HBM3", **extra):
    res = {
        "id": rid,
        "gpu": gpu,
        "driver": "580.159.04",
        "cuda_driver": "13.0",
        "memory": "81559 MiB",
        "command": ["iree-benchmark-module", "--device=cuda"],
        "date": "2026-11-25T10:03:58+00:00",
        "function": "main",
        "latency_us": 182.5,
        "spread": 0.0024,
        "samples_us": [182.5] * 5,
        "repetitions": 5,
    }
    res.update(extra)
    return res


def test_gpu_hardware_name():
    assert gpu_hardware_name("NVIDIA H100 80GB HBM3") == "nvidia_h100"
    assert gpu_hardware_name("NVIDIA H200") == "nvidia_h200"
    assert gpu_hardware_name("NVIDIA GeForce RTX 4090") == "nvidia_4090"
    with pytest.raises(ValueError, match="cannot name"):
        gpu_hardware_name("AMD Instinct MI300X")


def test_import_writes_valid_amendments_once(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    recs = [module(0), module(1)]
    append_records(run / "modules.jsonl", recs)
    results = tmp_path / "results.jsonl"
    append_records(
        results,
        [
            _result(recs[0]["id"]),
            _result(recs[1]["id"], error="exit status 1: CUDA error", latency_us=None),
            _result("f" * 64),
        ],
    )
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps({"provenance": {"date": "d0", "compile_flags": ["--x"]}})
    )
    report = import_gpu_results(results, run, manifest=manifest)
    assert report["written"] == 1 and report["unknown"] == ["f" * 64]
    assert report["errors"] == {recs[1]["id"]: "exit status 1: CUDA error"}
    lines = [json.loads(x) for x in (run / AMENDMENTS_FILE).read_text().splitlines()]
    (amendment,) = lines
    assert validate_amendment(amendment) == []
    assert amendment["targets"] == {
        "nvidia_h100.latency_us": 182.5,
        "nvidia_h100.latency_us_spread": 0.0024,
    }
    prov = amendment["provenance"]
    assert prov["gpu"] == "NVIDIA H100 80GB HBM3" and prov["compile_flags"] == ["--x"]
    assert prov["compiled"] == "d0" and prov["driver"] == "580.159.04"

    again = import_gpu_results(results, run)
    assert again["written"] == 0 and again["already"] == 1

    ds = load_dataset(data_home=run, targets="nvidia_h100")
    assert ds.target_names == [
        "nvidia_h100.latency_us",
        "nvidia_h100.latency_us_spread",
    ]
    np.testing.assert_array_equal(ds.target[:, 0], [182.5, np.nan])


# --- export (needs IREE) -------------------------------------------------------------


@pytest.mark.collect
def test_export_compiles_a_batch(tmp_path):
    pytest.importorskip("iree.compiler")
    pytest.importorskip("iree.runtime")
    run = tmp_path / "run"
    run.mkdir()
    timed = module(1, targets={"nvidia_h100.latency_us": 5.0})
    failed = module(
        2,
        targets={},
        status="failed",
        failures=[{"stage": "compile:cuda", "message": "x"}],
    )
    broken = module(3, text="func.func @main( {\n")
    append_records(run / "modules.jsonl", [module(0), timed, failed, broken])
    out = tmp_path / "batch"
    manifest = export_gpu_batch(run, out)
    (entry,) = manifest["modules"]
    assert entry["id"] == module(0)["id"] and entry["function"] == "main"
    assert entry["types"] == ["tensor<4xf32>", "tensor<4xf32>"]
    assert entry["inputs"] == [
        f"4xf32=@inputs/{entry['id']}/input0.bin",
        f"4xf32=@inputs/{entry['id']}/input1.bin",
    ]
    assert (out / entry["vmfb"]).stat().st_size > 0
    assert (out / f"inputs/{entry['id']}/input1.bin").stat().st_size == 16
    assert [s["id"] for s in manifest["skipped"]] == [broken["id"]]
    assert "--iree-cuda-target=sm_80" in manifest["provenance"]["compile_flags"]
    assert json.loads((out / "manifest.json").read_text()) == manifest

    # Once amended, a record is not exported again; a tiny budget stops early.
    append_records(
        run / AMENDMENTS_FILE,
        [
            {
                "kind": "amendment",
                "id": module(0)["id"],
                "targets": {"nvidia_h100.latency_us": 1.0},
                "provenance": {},
            }
        ],
    )
    assert export_gpu_batch(run, tmp_path / "b2")["modules"] == []
    # What does not fit is deferred; what never fits is skipped.
    room = entry["bytes"] * 3 // 2  # one module of this size, not two
    two = export_gpu_batch([module(5), module(6)], tmp_path / "b3", max_bytes=room)
    assert [m["id"] for m in two["modules"]] == [module(5)["id"]]
    assert two["deferred"] == [module(6)["id"]] and two["skipped"] == []
    tiny = export_gpu_batch([module(0)], tmp_path / "b4", max_bytes=10)
    assert tiny["modules"] == [] and "exceed max_bytes" in tiny["skipped"][0]["reason"]
    assert export_gpu_batch([module(0)], tmp_path / "b5", limit=0)["stopped"] == (
        "limit of 0 modules reached"
    )
