"""Tests of the collection runner (collect/_runner.py).

Most tests drive the runner with fake stage functions (``_Stages``), so they
check the runner's own behaviour (records, failures, resume, a kill mid-run,
pinned measurements) without compilers; the tests marked ``collect`` run the
real toolchain on tiny programs.
"""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlircost_classic.collect._runner import (
    _Lowered,
    _run,
    _Stages,
    detect_level,
)
from mlircost_classic.datasets import programs_of, read_records, validate_record

TESTS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class FakeSpec:
    family: str
    params: dict = field(default_factory=dict)

    def key(self):
        return json.dumps([self.family, self.params], sort_keys=True)


@dataclass
class FakeKernel:
    name: str
    source: str | None
    targets: dict
    calls: int | None = None


@dataclass
class FakeResult:
    targets: dict
    kernels: list
    failures: list
    provenance: dict


def fake_lower(spec, levels, timeout):
    if spec.family == "unlowerable":
        return _Lowered(
            errors=dict.fromkeys(levels, "export: boom"), seconds={"export": 0.1}
        )
    n = spec.params.get("n", 0)
    text = f"func.func @f{n}() {{ linalg.fill }} // shared={spec.params.get('shared')}"
    if spec.family == "huge":  # 40 GB of elided f32 weights
        text += "\n%w = arith.constant dense_resource<__elided__> : tensor<100000x100000xf32>"
    return _Lowered(
        texts={"linalg": text, "torch": f"torch.aten.mm {n}"},
        errors={"affine": "no affine"} if spec.family == "partial" else {},
        seconds={"export": 0.01, "linalg": 0.02},
    )


calls = []
folders = []  # (hardware, text, workdir, whether an earlier call left a compile)


def fake_measure(
    text, hardware, *, input_level, timeouts, workdir=None, reuse_compiles=False
):
    calls.append((hardware, text))
    if workdir is not None:
        assert reuse_compiles
        compiled = Path(workdir, "module.vmfb")
        folders.append((hardware, text, workdir, compiled.exists()))
        compiled.parent.mkdir(parents=True, exist_ok=True)
        compiled.write_text(text)
    else:
        folders.append((hardware, text, None, False))
    delay = float(os.environ.get("FAKE_MEASURE_DELAY", "0"))
    time.sleep(delay)
    if "raise" in text:
        raise RuntimeError("measure crashed")
    if "@f13()" in text:
        return FakeResult({}, [], [("compile:cpu_a", "error: bad op")], {})
    targets = {f"{hw}.instructions": float(len(text)) for hw in hardware}
    shared = "shared=True" in text
    kernels = [
        FakeKernel(
            "d0",
            "kernel-common" if shared else "kernel " + text,
            {f"{hw}.regs": 8.0 for hw in hardware},
            calls=3,
        ),
        FakeKernel("d1", None, {}),
    ]
    if shared:
        kernels.pop()
    prov = {
        "host_cpu": "FakeCPU",
        "commands": {hw: ["--x"] for hw in hardware},
        "seconds": {f"compile:{hw}": 0.5 for hw in hardware},
    }
    try:
        import distributed

        prov["worker"] = distributed.get_worker().name
    except (ImportError, ValueError):
        pass
    return FakeResult(targets, kernels, [], prov)


STAGES = _Stages(
    lower=fake_lower,
    fill=lambda text: text + " filled",
    strip=lambda text: text.replace("BLOB", ""),
    measure=fake_measure,
    needs={"cpu_a": None, "cpu_b": None, "cpu_host": "cpu_timing", "gpu": "cuda"},
    deterministic={"cpu_a": {"instructions", "regs"}, "cpu_b": {"instructions"}},
    timeout_keys=frozenset({"compile"}),
    versions=lambda: {"fake": "1"},
    host_cpu=lambda: "FakeCPU",
)


def items(*specs):
    return [
        {
            "key": s.key(),
            "source": "families",
            "family": s.family,
            "params": s.params,
            "spec": s,
        }
        for s in specs
    ]


def run(specs, out, hardware=("cpu_a",), **kw):
    kw.setdefault("resume", False)
    return _run(
        items(*specs),
        list(hardware),
        out,
        seed=0,
        n_jobs=kw.pop("n_jobs", 1),
        timeouts=kw.pop("timeouts", None),
        progress=False,
        stages=STAGES,
        **kw,
    )


def check_files(out):
    mods = read_records(out / "modules.jsonl")
    kers = read_records(out / "kernels.jsonl")
    for rec in mods + kers:
        assert validate_record(rec) == [], rec
    assert len({r["id"] for r in mods}) == len(mods)
    assert len({r["id"] for r in kers}) == len(kers)
    assert len({r["key"] for r in mods}) == len(mods)
    kernel_ids = {r["id"] for r in kers}
    for rec in mods:
        assert set(rec["kernels"]) <= kernel_ids
    return mods, kers


def test_records_of_a_good_program(tmp_path):
    summary = run([FakeSpec("mlp", {"n": 1})], tmp_path, hardware=("cpu_a", "cpu_b"))
    mods, kers = check_files(tmp_path)
    (mod,) = mods
    assert mod["status"] == "partial"  # d1 has no executable source
    assert mod["failures"] == [
        {"stage": "kernels", "message": "dispatch d1: no executable source"}
    ]
    # The measured text is the lowered linalg text with its weights filled.
    size = float(len(mod["ir"]["linalg"] + " filled"))
    assert mod["targets"] == {"cpu_a.instructions": size, "cpu_b.instructions": size}
    assert mod["compiled_level"] == "linalg" and set(mod["ir"]) == {"linalg", "torch"}
    assert mod["provenance"]["hardware"] == ["cpu_a", "cpu_b"]
    assert mod["provenance"]["tools"]["fake"] == "1"
    assert {"torch", "torch-mlir"} <= set(mod["provenance"]["tools"])
    assert mod["provenance"]["host_cpu"] == "FakeCPU"
    assert mod["provenance"]["seed"] == 0 and mod["provenance"]["date"]
    assert mod["seconds"]["compile:cpu_a"] == 0.5 and "lower" in mod["seconds"]
    (ker,) = kers
    assert mod["kernels"] == [ker["id"]] and ker["module_id"] == mod["id"]
    assert mod["kernel_calls"] == {ker["id"]: 3}
    assert ker["targets"] == {"cpu_a.regs": 8.0, "cpu_b.regs": 8.0}
    assert ker["name"] == "d0" and ker["status"] == "ok"
    assert mod["source"] == ker["source"] == "families"
    assert summary.status == {"partial": 1} and summary.kernels_written == 1
    assert summary.failures == {"kernels": 1}


def test_failures_are_recorded_and_the_run_goes_on(tmp_path):
    specs = [
        FakeSpec("unlowerable", {"n": 0}),
        FakeSpec("mlp", {"n": 13}),  # the fake compiler rejects it
        FakeSpec("raise", {"n": 2}),  # the text contains "raise": measure crashes
        FakeSpec("partial", {"n": 3, "shared": True}),
    ]
    specs[2] = FakeSpec("mlp", {"n": 2, "shared": "raise"})
    summary = run(specs, tmp_path)
    mods, _ = check_files(tmp_path)
    by = {m["params"]["n"]: m for m in mods}
    assert by[0]["status"] == "failed" and by[0]["compiled_level"] is None
    assert {f["stage"] for f in by[0]["failures"]} == {
        "lower:torch",
        "lower:linalg",
        "lower:stablehlo",
        "lower:tosa",
        "lower:affine",
    }
    assert by[13]["status"] == "failed" and by[13]["compiled_level"] == "linalg"
    assert by[13]["failures"] == [
        {"stage": "compile:cpu_a", "message": "error: bad op"}
    ]
    assert by[2]["status"] == "failed"
    assert by[2]["failures"][0]["stage"] == "measure:cpu_a"
    assert "RuntimeError: measure crashed" in by[2]["failures"][0]["message"]
    assert by[3]["status"] == "partial"
    assert by[3]["failures"] == [{"stage": "lower:affine", "message": "no affine"}]
    assert summary.status == {"failed": 3, "partial": 1}
    text = summary.to_text()
    assert "4 module records written" in text and "failures at lower:affine: 2" in text


def test_kernels_shared_by_programs_are_stored_once(tmp_path):
    specs = [FakeSpec("mlp", {"n": i, "shared": True}) for i in range(3)]
    summary = run(specs, tmp_path)
    mods, kers = check_files(tmp_path)
    assert len(kers) == 1 and all(m["kernels"] == [kers[0]["id"]] for m in mods)
    assert kers[0]["module_id"] == mods[0]["id"]
    assert summary.kernels_written == 1 and summary.kernels_shared == 2
    assert all(m["status"] == "ok" for m in mods)


def test_resume_skips_recorded_specs_failed_ones_included(tmp_path):
    specs = [FakeSpec("unlowerable", {"n": 0}), FakeSpec("mlp", {"n": 1})]
    run(specs[:1], tmp_path)
    with pytest.raises(FileExistsError, match="resume=True"):
        run(specs, tmp_path)
    summary = run(specs, tmp_path, resume=True)
    assert summary.skipped == 1 and summary.written == 1
    mods, _ = check_files(tmp_path)
    assert len(mods) == 2


def test_specs_of_programs_recorded_already_are_not_measured(tmp_path):
    # fake_lower's text depends on the params only: specs of other families
    # with the same params lower to one program (as HuBERT to wav2vec2's).
    first = tmp_path / "first"
    run([FakeSpec("mlp", {"n": 1, "shared": True})], first)
    known = programs_of(read_records(first / "modules.jsonl"))
    assert len(known) == 1 and list(known.values())[0][1] == "ok"
    out = tmp_path / "second"
    specs = [
        FakeSpec("cnn", {"n": 1, "shared": True}),  # the program recorded in `first`
        FakeSpec("mlp", {"n": 1, "shared": True}),  # the very record of `first`
        FakeSpec("mlp", {"n": 2, "shared": True}),  # a new program
        FakeSpec("rnn", {"n": 2, "shared": True}),  # the new program again, in this run
    ]
    calls.clear()
    summary = run(specs, out, known=known)
    assert [text for _, text in calls] == [
        "func.func @f2() { linalg.fill } // shared=True filled"
    ]
    mods, _ = check_files(out)
    assert [m["family"] for m in mods] == ["mlp"] and summary.written == 1
    assert summary.known_programs == 3
    listed = read_records(out / "same_program.jsonl")
    assert [(r["family"], r["recorded_as"]) for r in listed] == [
        ("cnn", specs[1].key()),
        ("mlp", specs[1].key()),
        ("rnn", specs[2].key()),
    ]
    assert "3 not measured" in summary.to_text()
    # Resumed, the listed specs are done too.
    calls.clear()
    again = run(specs, out, known=known, resume=True)
    assert calls == [] and again.skipped == 4 and again.known_programs == 0

    # The spec's own record that did not succeed is collected again; without
    # `known` every spec is measured.
    calls.clear()
    retry = {digest: (key, "partial") for digest, (key, _) in known.items()}
    run(specs[:2], tmp_path / "third", known=retry)
    assert len(calls) == 1 and "@f1()" in calls[0][1]
    calls.clear()
    run(specs, tmp_path / "fourth")
    assert len(calls) == 4


@pytest.mark.parametrize("known", [None, {}], ids=["measure-all", "known-programs"])
def test_resume_heals_a_torn_last_line(tmp_path, known):
    run([FakeSpec("mlp", {"n": 1})], tmp_path)
    with open(tmp_path / "modules.jsonl", "ab") as fh:
        fh.write(b'{"id": "abc", "kind": "mod')
    summary = run(
        [FakeSpec("mlp", {"n": 1}), FakeSpec("mlp", {"n": 2})],
        tmp_path,
        resume=True,
        known=known,
    )
    assert summary.written == 1 and len(summary.problems) == 1
    problems = []
    assert len(read_records(tmp_path / "modules.jsonl", problems)) == 2
    assert len(problems) == 1


def test_pinned_hardware_is_measured_after_the_batch(tmp_path):
    import joblib

    calls.clear()
    with joblib.parallel_config(backend="threading"):  # calls seen in-process
        run(
            [FakeSpec("mlp", {"n": i}) for i in range(10)],
            tmp_path,
            hardware=("cpu_a", "cpu_host"),
            n_jobs=2,
        )
    mods, _ = check_files(tmp_path)
    # A batch (4 x n_jobs programs) is compiled first, then timed one by one.
    first, last = (
        [["cpu_a"]] * 8 + [["cpu_host"]] * 8,
        [["cpu_a"]] * 2 + [["cpu_host"]] * 2,
    )
    assert [hw for hw, _ in calls] == first + last
    for m in mods:
        assert set(m["targets"]) == {"cpu_a.instructions", "cpu_host.instructions"}
        assert set(m["seconds"]) >= {"measure", "measure:cpu_timing"}
        assert m["provenance"]["commands"] == {
            "cpu_a": ["--x"],
            "cpu_host": ["--x"],
        }


def test_host_timing_reuses_the_folder_the_parallel_step_compiled_in(tmp_path):
    import joblib

    folders.clear()
    with joblib.parallel_config(backend="threading"):
        run(
            [FakeSpec("mlp", {"n": i}) for i in range(4)],
            tmp_path / "run",
            hardware=("cpu_a", "cpu_host"),
            n_jobs=2,
        )
    plain = {text: (w, seen) for hw, text, w, seen in folders if hw == ["cpu_a"]}
    timed = {text: (w, seen) for hw, text, w, seen in folders if hw == ["cpu_host"]}
    assert len(plain) == 4 and plain.keys() == timed.keys()
    assert len({w for w, _ in plain.values()}) == 4
    for text, (workdir, seen) in plain.items():
        assert workdir is not None and not seen
        assert timed[text] == (workdir, True)
        assert not os.path.exists(workdir)  # removed with its batch


def test_no_folder_is_kept_without_a_pinned_step(tmp_path):
    import joblib

    folders.clear()
    with joblib.parallel_config(backend="threading"):
        run([FakeSpec("mlp", {"n": i}) for i in range(3)], tmp_path, n_jobs=2)
    assert len(folders) == 3 and {w for _, _, w, _ in folders} == {None}


def test_parallel_run_matches_sequential(tmp_path):
    specs = [FakeSpec("mlp", {"n": i}) for i in range(5)]
    run(specs, tmp_path / "seq")
    run(specs, tmp_path / "par", n_jobs=2)
    seq, _ = check_files(tmp_path / "seq")
    par, _ = check_files(tmp_path / "par")
    assert sorted(m["id"] for m in seq) == sorted(m["id"] for m in par)


def test_unknown_hardware_or_timeout_is_refused_before_work(tmp_path):
    with pytest.raises(ValueError, match="unknown hardware"):
        run([FakeSpec("mlp")], tmp_path / "x", hardware=("tpu",))
    with pytest.raises(ValueError, match=r"unknown timeout keys \['link'\]"):
        run([FakeSpec("mlp")], tmp_path / "x", timeouts={"link": 1})
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "text, level",
    [
        ("%0 = torch.aten.mm %a, %b : !torch.vtensor<[2,2],f32>", "torch"),
        ("%0 = stablehlo.add %a, %b : tensor<2xf32>", "stablehlo"),
        ("%0 = tosa.add %a, %b : (tensor<2xf32>) -> tensor<2xf32>", "tosa"),
        ("%0 = linalg.matmul ins(%a, %b : tensor<2x2xf32>)", "linalg"),
        ("%0 = arith.addf %a, %b : tensor<2xf32>", "linalg"),
        (
            "affine.for %i = 0 to 4 { %x = affine.load %m[%i] : memref<4xf32> }",
            "affine",
        ),
    ],
)
def test_detect_level(text, level):
    assert detect_level(text) == level


# --- killed mid-run, then resumed ------------------------------------------------

CHILD = """
import sys
sys.path.insert(0, {tests!r})
import test_collect_runner as t
t.run([t.FakeSpec("mlp", {{"n": i}}) for i in range(8)], t.Path({out!r}), resume=True)
"""


def test_killed_run_resumes_without_loss_or_duplicates(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "FAKE_MEASURE_DELAY": "0.4"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(tests=str(TESTS), out=str(out))], env=env
    )
    deadline = time.monotonic() + 120
    modules = out / "modules.jsonl"
    while not (modules.exists() and modules.read_bytes().count(b"\n") >= 1):
        assert proc.poll() is None, "the collection ended before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_records(modules)
    assert 1 <= len(before) < 8
    summary = run([FakeSpec("mlp", {"n": i}) for i in range(8)], out, resume=True)
    mods, kers = check_files(out)
    assert sorted(m["params"]["n"] for m in mods) == list(range(8))
    assert summary.skipped == len(before) and summary.written == 8 - len(before)
    assert [m["id"] for m in mods[: len(before)]] == [m["id"] for m in before]
    assert len(kers) == 8


# --- real toolchain ----------------------------------------------------------------


# --- verify (fake stages) ----------------------------------------------------------


def test_verify_reproduces_and_catches_a_changed_label(tmp_path):
    from mlircost_classic.collect import verify

    run(
        [FakeSpec("mlp", {"n": i}) for i in range(3)],
        tmp_path,
        hardware=("cpu_a", "cpu_host"),
    )
    report = verify(tmp_path, sample=2, seed=1, _stages=STAGES)
    assert report.passed and len(report.checked) == 2
    assert report.ratios()["cpu_host.instructions"] == [1.0, 1.0]
    assert "PASS" in report.to_text()

    mods = read_records(tmp_path / "modules.jsonl")
    mods[0]["targets"]["cpu_a.instructions"] += 1
    report = verify(mods, sample=3, _stages=STAGES)
    assert not report.passed
    assert [(r["id"], r["target"]) for r in report.mismatches] == [
        (mods[0]["id"], "cpu_a.instructions")
    ]
    assert "MISMATCH" in report.to_text()


def test_verify_reports_a_failed_rerun(tmp_path):
    from mlircost_classic.collect import verify

    run([FakeSpec("mlp", {"n": 1})], tmp_path)
    (rec,) = read_records(tmp_path / "modules.jsonl")
    rec["ir"]["linalg"] += " raise"  # the fake measure crashes on this text
    report = verify([rec], _stages=STAGES)
    assert not report.passed and report.mismatches[0]["measured"] is None
    assert report.failures[rec["id"]][0]["stage"] == "measure:cpu_a"


def test_verify_compares_the_kernels_of_each_module(tmp_path):
    from mlircost_classic.collect import verify

    specs = [FakeSpec("mlp", {"n": i}) for i in range(2)]
    specs += [FakeSpec("mlp", {"n": i, "shared": True}) for i in (7, 8)]
    run(specs, tmp_path)
    mods = read_records(tmp_path / "modules.jsonl")
    kers = read_records(tmp_path / "kernels.jsonl")
    # The shared kernel was measured with the first module that made it.
    shared = next(k for k in kers if k["ir"]["dispatch"] == "kernel-common")
    report = verify(tmp_path, sample=4, _stages=STAGES)
    assert report.passed, report.to_text()
    assert sorted(report.checked_kernels) == sorted(k["id"] for k in kers)
    kernel_rows = [r for r in report.rows if r["kind"] == "kernel"]
    assert len(kernel_rows) == len(kers) and all(r["match"] for r in kernel_rows)
    assert "4 modules and 3 of their kernels" in report.to_text()

    changed = next(k for k in kers if k["id"] != shared["id"])
    changed["targets"]["cpu_a.regs"] = 9.0
    report = verify(mods + kers, sample=4, _stages=STAGES)
    assert [(r["kind"], r["id"], r["target"]) for r in report.mismatches] == [
        ("kernel", changed["id"], "cpu_a.regs")
    ]
    assert "MISMATCH kernel" in report.to_text()

    # Matched by text: a kernel that another backend named first is found.
    changed["targets"]["cpu_a.regs"] = 8.0
    changed["name"] = "d7"
    report = verify(mods + kers, sample=4, _stages=STAGES)
    assert report.passed and not report.notes, report.to_text()
    changed["name"] = "d0"
    changed["ir"]["dispatch"] += " edited"
    report = verify(mods + kers, sample=4, _stages=STAGES)
    assert any("dispatch text differs" in n for n in report.notes)

    # A record of an older collector lacks the newer steps' commands: no note;
    # a compile whose flags changed is noted.
    changed["ir"]["dispatch"] = changed["ir"]["dispatch"].removesuffix(" edited")
    for m in mods:
        m["provenance"]["commands"] = {"cpu_a": ["--x"]}
    report = verify(mods + kers, sample=4, _stages=STAGES)
    assert not any("flags differ" in n for n in report.notes), report.notes
    mods[0]["provenance"]["commands"] = {"cpu_a": ["--y"]}
    report = verify(mods + kers, sample=4, _stages=STAGES)
    assert sum("flags differ" in n for n in report.notes) == 1


# --- real toolchain ------------------------------------------------------------------

BAD_LINALG = """func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "nosuchdialect.op"(%a) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
"""


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    pytest.importorskip("torch_mlir")
    pytest.importorskip("iree.compiler")
    from mlircost_classic.collect import collect

    out = tmp_path_factory.mktemp("real")
    summary = collect(
        ["elementwise", "mlp"],
        2,
        0,
        ["cpu_x86_64_v3"],
        out,
        progress=False,
        small=True,
    )
    return out, summary


@pytest.mark.collect
def test_real_collection_records(real_run):
    out, summary = real_run
    mods, kers = check_files(out)
    assert summary.written == 2 and len(mods) == 2
    for m in mods:
        assert m["status"] in ("ok", "partial"), m["failures"]
        assert m["compiled_level"] == "linalg"
        assert {"torch", "linalg", "stablehlo", "tosa"} <= set(m["ir"])
        assert m["targets"]["cpu_x86_64_v3.instructions"] > 0
        assert m["kernels"] and m["provenance"]["tools"]
    assert kers and all(k["ir"]["dispatch"] for k in kers)


@pytest.mark.collect
def test_real_verify_reproduces_deterministic_targets(real_run):
    from mlircost_classic.collect import verify

    out, _ = real_run
    report = verify(out, sample=1, seed=0)
    assert report.passed, report.to_text()
    assert report.checked_kernels
    for kind in ("module", "kernel"):
        assert any(
            r["kind"] == kind and r["target"] == "cpu_x86_64_v3.instructions"
            for r in report.rows
        )


@pytest.mark.collect
def test_real_failures_are_recorded(tmp_path):
    pytest.importorskip("torch_mlir")
    pytest.importorskip("iree.compiler")
    from mlircost_classic.collect import collect, collect_files

    bad = tmp_path / "bad.mlir"
    bad.write_text(BAD_LINALG)
    summary = collect_files(
        [bad], ["cpu_x86_64_v3"], tmp_path / "files", progress=False
    )
    (rec,) = check_files(tmp_path / "files")[0]
    assert summary.status == {"failed": 1}
    assert rec["family"] == "user" and rec["compiled_level"] == "linalg"
    assert rec["failures"][0]["stage"].startswith("compile")

    summary = collect(
        ["mlp"],
        1,
        0,
        ["cpu_x86_64_v3"],
        tmp_path / "timeout",
        # No lowering takes 1 ms (torch.export alone takes far longer), even in
        # a warm lowering server on a quiet machine (0.2 s was met there).
        timeouts={"lower": 0.001},
        progress=False,
        small=True,
    )
    (rec,) = check_files(tmp_path / "timeout")[0]
    assert rec["status"] == "failed" and rec["ir"] == {}
    assert rec["failures"]
    assert all(
        f["message"].startswith("timed out after 0.001 s") for f in rec["failures"]
    )


def test_lowering_retries_linalg_alone_after_a_timeout(monkeypatch):
    import mlircost_classic.collect._runner as runner

    tries = []

    def once(spec, levels, timeout):
        tries.append(list(levels))
        if len(levels) > 1:
            return "timed out after 5 s"
        return _Lowered(texts={"linalg": "func"}, seconds={"export": 1.0})

    monkeypatch.setattr(runner, "_lower_once", once)
    lowered = runner._lower_in_child(FakeSpec("mlp"), ["torch", "linalg", "tosa"], 5)
    assert tries == [["torch", "linalg", "tosa"], ["linalg"]]
    assert lowered.texts == {"linalg": "func"}
    assert lowered.errors == {
        "torch": "timed out after 5 s",
        "tosa": "timed out after 5 s",
    }


@pytest.mark.collect
def test_real_user_file_with_stripped_weights(real_run, tmp_path):
    from mlircost_classic.collect import collect_files

    out, _ = real_run
    (mlp,) = [m for m in read_records(out / "modules.jsonl") if m["family"] == "mlp"]
    assert "dense_resource<" in mlp["ir"]["linalg"]
    path = tmp_path / "mlp.mlir"
    path.write_text(mlp["ir"]["linalg"])  # weights stripped, as the dataset has them
    collect_files([path], ["cpu_x86_64_v3"], tmp_path / "out", progress=False)
    (rec,) = check_files(tmp_path / "out")[0]
    assert rec["status"] == "ok" and rec["params"] == {"file": "mlp.mlir"}
    assert rec["source"] == rec["family"] == "user"
    # Filled the same way as during collection: the same program, the same count.
    assert rec["targets"] == mlp["targets"]


REAL_CHILD = """
from mlircost_classic.collect import collect
collect(["elementwise", "mlp", "reduction"], 3, 0, ["cpu_x86_64_v3"], {out!r},
        resume=True, progress=False, small=True)
"""


@pytest.mark.collect
def test_real_run_killed_mid_run_then_resumed(tmp_path):
    pytest.importorskip("torch_mlir")
    pytest.importorskip("iree.compiler")
    from mlircost_classic.collect import collect

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", REAL_CHILD.format(out=str(out))])
    modules = out / "modules.jsonl"
    deadline = time.monotonic() + 300
    while not (modules.exists() and modules.read_bytes().count(b"\n") >= 1):
        assert proc.poll() is None, "the collection ended before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_records(modules)
    assert 1 <= len(before) < 3
    collect(
        ["elementwise", "mlp", "reduction"],
        3,
        0,
        ["cpu_x86_64_v3"],
        out,
        resume=True,
        progress=False,
        small=True,
    )
    mods, kers = check_files(out)
    assert sorted(m["family"] for m in mods) == ["elementwise", "mlp", "reduction"]
    assert [m["id"] for m in mods[: len(before)]] == [m["id"] for m in before]


def test_package_imports_without_torch_or_iree():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'torch_mlir', 'iree'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import mlircost_classic.collect as c\n"
        "for name in c.__all__:\n"
        "    getattr(c, name)\n"
        "print(len(c.__all__))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 20


@pytest.mark.parametrize("content", ["", "\n  \n", "// only a comment\n"])
def test_an_empty_input_file_is_one_clear_error(tmp_path, content):
    from mlircost_classic.collect import collect_files

    good, empty = tmp_path / "good.mlir", tmp_path / "empty.mlir"
    good.write_text(BAD_LINALG)
    empty.write_text(content)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"empty\.mlir: the file holds no MLIR op"):
        collect_files([good, empty], ["cpu_x86_64_v3"], out, progress=False)
    assert not out.exists()  # refused before any file was compiled


def test_weights_over_the_fill_budget_are_a_recorded_failure(tmp_path):
    # The real fill: a program whose weights would not fit in memory gets a
    # fill_resources failure instead of taking the run down; the next one runs.
    import dataclasses

    from mlircost_classic.collect._resources import fill_missing_resources

    stages = dataclasses.replace(STAGES, fill=fill_missing_resources)
    calls.clear()
    _run(
        items(FakeSpec("huge", {"n": 1}), FakeSpec("mlp", {"n": 2})),
        ["cpu_a"],
        tmp_path,
        seed=0,
        n_jobs=1,
        timeouts=None,
        progress=False,
        stages=stages,
        resume=False,
    )
    mods, _ = check_files(tmp_path)
    by_family = {m["family"]: m for m in mods}
    (failure,) = by_family["huge"]["failures"]
    assert failure["stage"] == "fill_resources"
    assert "40.00 GB" in failure["message"] and "budget" in failure["message"]
    assert "cpu_a.instructions" in by_family["mlp"]["targets"]
    assert all("@f1" not in text for _, text in calls)  # never compiled
