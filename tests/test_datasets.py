"""Tests of mlircost_classic.datasets: schema, JSON Lines, shards, load_dataset."""

import gzip
import hashlib
import json
import lzma
import os
import subprocess
import sys

import numpy as np
import pytest
from dataset_records import LINALG, kernel, module

from mlircost_classic.datasets import (
    AMENDMENT_FIELDS,
    FIELDS,
    SCHEMA_VERSION,
    append_records,
    bundled_programs,
    dataset_info,
    iter_dataset,
    kernel_record_id,
    load_dataset,
    module_record_id,
    pack,
    program_digest,
    read_records,
    recompress,
    shard_digest,
    shard_paths,
    validate_amendment,
    validate_record,
)

# --- schema ------------------------------------------------------------------


def test_good_records_validate():
    assert validate_record(module()) == []
    assert validate_record(kernel()) == []
    assert module()["schema_version"] == SCHEMA_VERSION


def test_fields_table_documents_every_field():
    for rec in (module(), kernel()):
        assert set(rec) <= set(FIELDS)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda r: r.pop("targets"), "missing field: targets"),
        (lambda r: r.update(kind="program"), "kind:"),
        (lambda r: r.update(status="done"), "status:"),
        (lambda r: r.update(status="partial"), "status 'partial'"),
        (lambda r: r.update(targets={}), "status 'ok' needs targets"),
        (lambda r: r["targets"].update({"instructions": 1.0}), "<hardware>.<metric>"),
        (lambda r: r["targets"].update({"a.b": float("nan")}), "finite number"),
        (lambda r: r["targets"].update({"a.b": True}), "finite number"),
        (lambda r: r["ir"].update(mhlo="x"), "unknown level 'mhlo'"),
        (lambda r: r.update(compiled_level="tosa"), "has no text"),
        (lambda r: r.update(compiled_level=None), "targets without a compiled_level"),
        (lambda r: r.update(failures=[{"stage": 1}]), "failures[0]"),
        (lambda r: r.update(kernels=["abc"]), "kernels:"),
        (lambda r: r.update(schema_version=99), "schema_version 99"),
        (lambda r: r.update(params=[]), "params: expected dict"),
        (lambda r: r["seconds"].update(lower=-1), "seconds['lower']"),
    ],
)
def test_bad_records_are_reported(change, expected):
    rec = module()
    change(rec)
    problems = validate_record(rec)
    assert any(expected in p for p in problems), problems


def test_edited_content_breaks_the_id():
    rec = module()
    rec["ir"]["linalg"] += " "
    assert validate_record(rec) == ["id: does not match the record content"]


def test_not_a_mapping():
    assert validate_record([1]) == ["a record is a JSON object, got list"]


def test_failed_record_needs_failures_and_no_targets():
    rec = module(
        targets={}, status="failed", failures=[{"stage": "lower", "message": "x"}]
    )
    assert validate_record(rec) == []
    rec = module(targets={}, status="failed")
    assert any("status 'failed'" in p for p in validate_record(rec))


def test_ids_are_content_hashes():
    a = module_record_id("mlp", {"a": 1, "b": 2}, "linalg", "text")
    assert a == module_record_id("mlp", {"b": 2, "a": 1}, "linalg", "text")
    assert (
        len(
            {
                a,
                module_record_id("mlp", {"a": 1, "b": 2}, "linalg", "text2"),
                module_record_id("cnn", {"a": 1, "b": 2}, "linalg", "text"),
                module_record_id("mlp", {"a": 1, "b": 3}, "linalg", "text"),
            }
        )
        == 4
    )
    assert kernel_record_id("s", ["b", "a"]) == kernel_record_id("s", ["a", "b"])
    assert kernel_record_id("s", ["a"]) != kernel_record_id("s", ["a", "b"])
    assert int(a, 16) and len(a) == 64
    # Kernel ids ignore the module they came from: same source, same record.
    assert kernel(0, "1" * 64)["id"] == kernel(0, "2" * 64)["id"]
    # Provenance (date, host) is not content.
    other = module(provenance={"date": "2030-01-01T00:00:00Z"})
    assert other["id"] == module()["id"]


# --- JSON Lines ----------------------------------------------------------------


def test_append_and_read_round_trip(tmp_path):
    path = tmp_path / "modules.jsonl"
    recs = [module(i) for i in range(3)]
    assert append_records(path, recs[:2]) == 2
    assert append_records(path, recs[2:]) == 1
    assert append_records(path, []) == 0
    assert read_records(path) == recs
    assert read_records(tmp_path / "absent.jsonl") == []


def test_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        append_records(tmp_path / "x.jsonl", [{"a": float("nan")}])


def test_torn_last_line_is_skipped_reported_and_healed(tmp_path):
    path = tmp_path / "modules.jsonl"
    append_records(path, [module(0)])
    with open(path, "ab") as fh:
        fh.write(json.dumps(module(1)).encode()[:40])  # a writer killed mid-line
    problems = []
    assert read_records(path, problems) == [module(0)]
    assert len(problems) == 1 and "torn last line" in problems[0]
    append_records(path, [module(2)])
    problems = []
    assert read_records(path, problems) == [module(0), module(2)]
    assert len(problems) == 1 and ":2: not a JSON object" in problems[0]


def test_concurrent_appenders_keep_lines_whole(tmp_path):
    path = tmp_path / "modules.jsonl"
    code = (
        "import sys; from mlircost_classic.datasets import append_records\n"
        "for i in range(40):\n"
        "    append_records(sys.argv[1], [{'w': sys.argv[2], 'i': i, 'pad': 'x' * 70000}])\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), w]) for w in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    problems = []
    recs = read_records(path, problems)
    assert problems == []
    assert sorted((r["w"], r["i"]) for r in recs) == sorted(
        (w, i) for w in "ab" for i in range(40)
    )


# --- shards ----------------------------------------------------------------------


def _digest(paths):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_pack_is_append_only(tmp_path):
    run, home = tmp_path / "run", tmp_path / "data"
    run.mkdir()
    append_records(run / "modules.jsonl", [module(i) for i in range(3)])
    append_records(run / "kernels.jsonl", [kernel(0)])
    first = pack(run, home)
    assert first.added == {"modules": 3, "kernels": 1, "variants": 0}
    assert [p.name for p in first.new_shards] == [
        "modules-00000.jsonl.xz",
        "kernels-00000.jsonl.xz",
    ]
    before = _digest(home.iterdir())

    again = pack(run, home)
    assert again.new_shards == [] and again.added == {
        "modules": 0,
        "kernels": 0,
        "variants": 0,
    }
    assert again.already_bundled == {"modules": 3, "kernels": 1, "variants": 0}
    assert _digest(home.iterdir()) == before

    append_records(run / "modules.jsonl", [module(i) for i in range(3, 8)])
    grown = pack(run, home, shard_records=3)
    assert [p.name for p in grown.new_shards] == [
        "modules-00001.jsonl.xz",
        "modules-00002.jsonl.xz",
    ]
    after = _digest(home.iterdir())
    assert {k: after[k] for k in before} == before
    ids = [r["id"] for p in shard_paths("modules", home) for r in read_records(p)]
    assert len(ids) == len(set(ids)) == 8
    with lzma.open(home / "modules-00002.jsonl.xz", "rt") as fh:
        assert len(fh.readlines()) == 2


def test_gz_shards_are_read_and_recompressed_with_the_same_records(tmp_path):
    # Shards packed before xz (and users' data homes) are .jsonl.gz:
    # they load beside xz ones, in number order, and recompress rewrites
    # them as xz shards of the same lines.
    run, home = tmp_path / "run", tmp_path / "data"
    run.mkdir()
    append_records(run / "modules.jsonl", [module(i) for i in range(5)])
    pack(run, home, shard_records=2)
    old = home / "modules-00001.jsonl.xz"
    lines = lzma.open(old).read()
    with gzip.open(home / "modules-00001.jsonl.gz", "wb") as fh:
        fh.write(lines)
    # Their records hash alike (what a model's dataset version is made of).
    assert shard_digest(home / "modules-00001.jsonl.gz") == shard_digest(old)
    assert shard_digest(old) == hashlib.sha256(lines).hexdigest()
    with pytest.raises(ValueError, match="modules-00001 is in .* twice"):
        shard_paths("modules", home)
    old.unlink()
    ids = [r["id"] for r in iter_dataset("modules", home)]
    assert ids == [module(i)["id"] for i in range(5)]
    assert [p.name for p in shard_paths("modules", home)] == [
        "modules-00000.jsonl.xz",
        "modules-00001.jsonl.gz",
        "modules-00002.jsonl.xz",
    ]

    assert [p.name for p in recompress(home)] == ["modules-00001.jsonl.xz"]
    assert not (home / "modules-00001.jsonl.gz").exists()
    assert lzma.open(old).read() == lines
    assert [r["id"] for r in iter_dataset("modules", home)] == ids
    assert recompress(home) == []


def test_pack_skips_a_module_whose_program_is_bundled(tmp_path):
    # Two specs (here two architectures) that lower to one program: one
    # record, or GroupKFold would test on a text it trained on.
    run, home = tmp_path / "run", tmp_path / "data"
    run.mkdir()
    first, twin = module(0, family="hf_a"), module(0, family="hf_b")
    assert first["id"] != twin["id"]
    append_records(run / "modules.jsonl", [first])
    assert pack(run, home).added["modules"] == 1
    append_records(run / "modules.jsonl", [twin, module(1, family="hf_b")])
    again = pack(run, home)
    assert again.added["modules"] == 1
    assert again.same_text["modules"] == [twin["id"]]
    # Within one run too.
    other = tmp_path / "other"
    other.mkdir()
    append_records(other / "modules.jsonl", [module(2), module(2, family="x")])
    assert pack(other, tmp_path / "fresh").same_text["modules"] == [
        module(2, family="x")["id"]
    ]
    # What a collection checks before measuring: the twin's program is
    # bundled (by the first record, which holds it).
    programs = bundled_programs(home)
    digest = program_digest(twin["ir"][twin["compiled_level"]])
    assert programs[digest] == (first["key"], first["status"])
    assert len(programs) == 2


def test_pack_refuses_invalid_records(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    bad = module(1)
    bad["ir"]["linalg"] += "\n"  # edited after hashing: the id is stale
    append_records(run / "modules.jsonl", [module(0), bad, kernel(0)])
    result = pack(run, tmp_path / "data")
    assert result.added["modules"] == 1
    assert len(result.invalid) == 2
    assert "a kernel record in modules.jsonl" in result.invalid[1]


def test_pack_is_reproducible(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    append_records(run / "modules.jsonl", [module(i) for i in range(4)])
    pack(run, tmp_path / "a")
    pack(run, tmp_path / "b")
    assert (tmp_path / "a/modules-00000.jsonl.xz").read_bytes() == (
        tmp_path / "b/modules-00000.jsonl.xz"
    ).read_bytes()


# --- load_dataset ------------------------------------------------------------------


@pytest.fixture
def home(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    recs = [
        module(0, family="mlp"),
        module(1, family="conv", targets={"nvidia_sm80.registers": 40.0}),
        module(2, family="conv", levels=("torch",)),  # no linalg text
        module(
            3,
            family="mlp",
            targets={},
            status="failed",
            failures=[{"stage": "compile:cpu_x86_64_v3", "message": "boom"}],
        ),
    ]
    append_records(run / "modules.jsonl", recs)
    append_records(run / "kernels.jsonl", [kernel(0), kernel(1)])
    pack(run, tmp_path / "data")
    return tmp_path / "data"


def test_load_dataset_bunch(home):
    ds = load_dataset(data_home=home)
    assert ds.target_names == ["cpu_x86_64_v3.instructions", "nvidia_sm80.registers"]
    assert ds.target.shape == (2, 2)
    np.testing.assert_array_equal(ds.target[0], [100.0, np.nan])
    np.testing.assert_array_equal(ds.target[1], [np.nan, 40.0])
    assert ds.data == [LINALG.format("linalg0"), LINALG.format("linalg1")]
    assert list(ds.groups) == ["mlp", "conv"]
    assert list(ds.ids) == [
        module(0)["id"],
        module(1, family="conv", targets={"nvidia_sm80.registers": 40.0})["id"],
    ]
    assert ds.frame is None
    assert "2 modules" in ds.DESCR


def test_load_dataset_levels_and_targets(home):
    torch = load_dataset(level="torch", data_home=home)
    assert len(torch.data) == 3  # the record without linalg has torch text
    only = load_dataset(targets="nvidia_sm80", data_home=home)
    assert only.target_names == ["nvidia_sm80.registers"]
    X, y = load_dataset(
        targets=["cpu_x86_64_v3.instructions"], data_home=home, return_X_y=True
    )
    assert len(X) == 2 and y.shape == (2, 1)
    # A metric word selects it on every hardware, as `mlircost predict --targets`.
    assert load_dataset(targets="instructions", data_home=home).target_names == [
        "cpu_x86_64_v3.instructions"
    ]
    with pytest.raises(ValueError, match="unknown target 'amd'"):
        load_dataset(targets=["amd"], data_home=home)
    with pytest.raises(ValueError, match="level for kind='modules'"):
        load_dataset(level="mhlo", data_home=home)
    with pytest.raises(ValueError, match="kind must be one of"):
        load_dataset(kind="programs", data_home=home)


def test_load_dataset_leaves_out_families(home):
    ds = load_dataset(data_home=home, exclude_families="conv")
    assert list(ds.families) == ["mlp"] and ds.target.shape[0] == 1
    both = load_dataset(data_home=home, exclude_families=["conv", "mlp"])
    assert len(both.data) == 0
    assert list(load_dataset(data_home=home, exclude_families=[]).families) == [
        "mlp",
        "conv",
    ]


def test_load_dataset_kernels(home):
    ds = load_dataset("kernels", data_home=home)
    assert ds.data == ["hal.executable @e0 {}", "hal.executable @e1 {}"]
    np.testing.assert_array_equal(ds.target[:, 0], [32.0, 33.0])
    with pytest.raises(ValueError, match="'dispatch'"):
        load_dataset("kernels", level="linalg", data_home=home)


def test_load_dataset_as_frame(home):
    pd = pytest.importorskip("pandas")
    ds = load_dataset(as_frame=True, data_home=home)
    assert isinstance(ds.frame, pd.DataFrame)
    assert list(ds.frame.columns) == [
        "id",
        "source",
        "family",
        "text",
        *ds.target_names,
    ]
    assert isinstance(ds.data, pd.Series) and list(ds.data) == ds.frame["text"].tolist()
    assert ds.target.shape == (2, 2) and np.isnan(ds.target.iloc[0, 1])


def test_descr_from_datasheet(home):
    (home / "DATASET.md").write_text("# Datasheet\n")
    assert load_dataset(data_home=home).DESCR == "# Datasheet\n"


def test_load_run_folder_and_missing(tmp_path, home):
    assert len(load_dataset(data_home=tmp_path / "run").data) == 2
    with pytest.raises(FileNotFoundError, match="no modules dataset"):
        load_dataset(data_home=tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        dataset_info(tmp_path / "empty")


def test_dataset_info(home):
    info = dataset_info(home)
    m = info.counts["modules"]
    assert m["records"] == 4
    assert m["status"] == {"ok": 3, "failed": 1}
    assert m["family"] == {"mlp": 2, "conv": 2}
    assert m["level"] == {"linalg": 3, "torch": 4}
    assert m["failures"] == {"compile:cpu_x86_64_v3": 1}
    assert m["unique_ir"] == 4
    assert info.targets["modules"]["cpu_x86_64_v3.instructions"] == {
        "count": 2,
        "min": 100.0,
        "median": 101.0,
        "max": 102.0,
    }
    assert info.counts["kernels"]["records"] == 2
    assert info.shards["modules"] == ["modules-00000.jsonl.xz"]
    text = info.to_text()
    assert "modules: 4 records" in text and "compile:cpu_x86_64_v3 1" in text


def test_no_network_and_no_pickle_in_loading(home, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("load_dataset must not use the network")

    monkeypatch.setattr(socket, "socket", refuse)
    assert len(load_dataset(data_home=home).data) == 2
    assert os.path.isdir(home)


# --- amendments ----------------------------------------------------------------------


def amendment(rec, targets, **provenance):
    return {
        "kind": "amendment",
        "id": rec["id"],
        "targets": targets,
        "provenance": {"gpu": "NVIDIA H100 80GB HBM3", **provenance},
    }


def test_amendment_validation():
    good = amendment(module(0), {"nvidia_h100.latency_us": 12.5})
    assert validate_amendment(good) == []
    assert validate_amendment([]) == ["an amendment is a JSON object, got list"]
    assert validate_amendment({**good, "kind": "module"})[0].startswith("kind:")
    assert validate_amendment({**good, "id": "x"}) == ["id: not a record id"]
    assert validate_amendment({**good, "targets": {}}) == [
        "targets: expected a non-empty object"
    ]
    bad = validate_amendment({**good, "targets": {"latency": float("nan")}})
    assert len(bad) == 2
    assert validate_amendment({**good, "record_kind": "x"})[0].startswith("record_kind")
    assert set(AMENDMENT_FIELDS) >= set(good) | {"record_kind"}


def test_amendments_merge_by_id(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    recs = [module(0), module(1)]
    failed = module(
        2,
        targets={},
        status="failed",
        failures=[{"stage": "compile:cpu_x86_64_v3", "message": "boom"}],
    )
    append_records(run / "modules.jsonl", [*recs, failed])
    append_records(
        run / "amendments.jsonl",
        [
            amendment(recs[0], {"nvidia_h100.latency_us": 10.0}, date="d1"),
            amendment(recs[0], {"nvidia_h100.latency_us": 11.0}, date="d2"),
            amendment(failed, {"nvidia_h100.latency_us": 1.0}),
            {**amendment(recs[1], {"nvidia_h100.latency_us": 3.0}), "id": "e" * 64},
            {"kind": "amendment", "id": "broken"},
        ],
    )
    problems = []
    merged = list(iter_dataset("modules", run, problems))
    assert [r["id"] for r in merged] == [r["id"] for r in [*recs, failed]]
    first = merged[0]
    assert first["targets"] == {
        "cpu_x86_64_v3.instructions": 100.0,
        "nvidia_h100.latency_us": 11.0,
    }
    assert [a["date"] for a in first["provenance"]["amendments"]] == ["d1", "d2"]
    assert first["provenance"]["amendments"][0]["targets"] == ["nvidia_h100.latency_us"]
    assert validate_record(first) == []
    assert merged[1] == recs[1] and merged[2] == failed
    assert len(problems) == 3
    assert "amendment broken skipped" in problems[0]
    assert f"failed module record {failed['id']} not applied" in problems[1]
    assert f"unknown module record {'e' * 64}" in problems[2]
    # Kernels are not amended by module amendments, and nothing is reported.
    append_records(run / "kernels.jsonl", [kernel(0)])
    kernel_problems = []
    assert list(iter_dataset("kernels", run, kernel_problems)) == [kernel(0)]
    assert kernel_problems == [
        "amendments.jsonl: amendment broken skipped: "
        "missing field: targets; missing field: provenance"
    ]

    ds = load_dataset(data_home=run, targets="nvidia_h100.latency_us")
    np.testing.assert_array_equal(ds.target[:, 0], [11.0, np.nan])
    info = dataset_info(run)
    assert info.counts["modules"]["amended"] == 1
    assert "1 amended" in info.to_text()


def test_pack_adds_amendments_append_only(tmp_path):
    run, home = tmp_path / "run", tmp_path / "data"
    run.mkdir()
    recs = [module(i) for i in range(3)]
    append_records(run / "modules.jsonl", recs[:2])
    append_records(
        run / "amendments.jsonl",
        [
            amendment(recs[0], {"nvidia_h100.latency_us": 10.0}),
            amendment(recs[2], {"nvidia_h100.latency_us": 30.0}),  # not yet bundled
        ],
    )
    first = pack(run, home)
    assert first.amendments_added == 1
    assert first.amendments_waiting == [recs[2]["id"]]
    assert [p.name for p in first.new_shards][-1] == "amendments-00000.jsonl.xz"
    before = _digest(home.iterdir())

    again = pack(run, home)
    assert again.amendments_added == 0 and again.new_shards == []
    assert _digest(home.iterdir()) == before

    append_records(run / "modules.jsonl", [recs[2]])
    append_records(
        run / "amendments.jsonl",
        [amendment(recs[1], {"nvidia_h100.latency_us": 20.0})],
    )
    grown = pack(run, home)
    assert grown.amendments_added == 2 and grown.amendments_waiting == []
    assert [p.name for p in grown.new_shards] == [
        "modules-00001.jsonl.xz",
        "amendments-00001.jsonl.xz",
    ]
    after = _digest(home.iterdir())
    assert {k: after[k] for k in before} == before
    ds = load_dataset(data_home=home, targets="nvidia_h100.latency_us")
    np.testing.assert_array_equal(ds.target[:, 0], [10.0, 20.0, 30.0])
    info = dataset_info(home)
    assert info.shards["amendments"] == [
        "amendments-00000.jsonl.xz",
        "amendments-00001.jsonl.xz",
    ]
    assert info.counts["modules"]["amended"] == 3


def test_pack_replaces_a_bundled_record_collected_again_with_more_targets(tmp_path):
    """A program that timed out under load and was collected again replaces
    its bundled record (same id) through an amendment; shards stay as they were."""
    run, home = tmp_path / "run", tmp_path / "data"
    run.mkdir()
    timeout = [{"stage": "compile:rocm", "message": "timed out after 400 s"}]
    partial = module(0, status="partial", failures=timeout)
    failed = module(1, targets={}, status="failed", failures=timeout)
    same = module(2, status="partial", failures=timeout)
    no_tosa = module(3, status="partial", failures=timeout)
    # a lowering that timed out: no compiled text, so an id of its own
    unlowered = module(
        4,
        targets={},
        status="failed",
        failures=timeout,
        levels=("torch",),
        compiled_level=None,
    )
    append_records(run / "modules.jsonl", [partial, failed, same, no_tosa, unlowered])
    pack(run, home)
    before = _digest(home.iterdir())
    again = {"cpu_x86_64_v3.instructions": 100.0, "amd_gfx942.vgprs": 24.0}
    retried = [
        module(0, targets=again),
        module(1, targets=again),
        # the same target names (a failure that is the program's own): kept out
        module(2, targets={"cpu_x86_64_v3.instructions": 7.0}),
        # the same targets and one more IR level: a lowering that timed out
        module(3, levels=("linalg", "torch", "tosa")),
        module(4),
    ]
    assert [r["id"] for r in retried[:4]] == [
        r["id"] for r in (partial, failed, same, no_tosa)
    ]
    assert retried[4]["id"] != unlowered["id"] and retried[4]["key"] == unlowered["key"]
    (run / "modules.jsonl").unlink()
    append_records(run / "modules.jsonl", retried)
    result = pack(run, home)
    assert result.replaced == {
        "modules": [r["id"] for r in (partial, failed, no_tosa, unlowered)]
    }
    assert result.added["modules"] == 1 and result.already_bundled["modules"] == 1
    assert [p.name for p in result.new_shards] == [
        "modules-00001.jsonl.xz",
        "amendments-00000.jsonl.xz",
    ]
    after = _digest(home.iterdir())
    assert {k: after[k] for k in before} == before

    merged = list(iter_dataset("modules", home))
    # the unlowered record is withdrawn; its successor comes with the new shard
    assert [r["id"] for r in merged] == [
        *(r["id"] for r in retried[:4]),
        retried[4]["id"],
    ]
    assert [r["status"] for r in merged] == ["ok", "ok", "partial", "ok", "ok"]
    assert [r["targets"] for r in merged[:2]] == [again, again]
    assert merged[2] == same and set(merged[3]["ir"]) == {"linalg", "torch", "tosa"}
    note = merged[1]["provenance"]["amendments"][-1]
    assert note["replaced"] and note["targets_before"] == 0
    assert merged[3]["provenance"]["amendments"][-1]["levels_before"] == [
        "linalg",
        "torch",
    ]
    assert [validate_record(r) for r in merged] == [[]] * 5
    assert len(load_dataset(data_home=home).data) == 5

    # Packing the same run again adds nothing.
    assert pack(run, home).new_shards == [] and _digest(home.iterdir()) == after
    # A replacement must carry a valid record of the amended id and kind.
    amend = {
        "kind": "amendment",
        "id": failed["id"],
        "targets": {},
        "record": retried[1],
        "provenance": {},
    }
    assert validate_amendment(amend) == []
    assert validate_amendment({**amend, "record": retried[0]}) == [
        "record: its id is not the amended id"
    ]
    assert validate_amendment({**amend, "record_kind": "kernel"}) == [
        "record: its kind is not the amendment's record_kind"
    ]
    assert validate_amendment({**amend, "record": {"kind": "module"}})[0].startswith(
        "record: "
    )
    withdraw = {**amend, "superseded_by": retried[4]["id"]}
    del withdraw["record"]
    assert validate_amendment(withdraw) == []
    assert validate_amendment({**withdraw, "superseded_by": failed["id"]}) == [
        "superseded_by: expected another record's id"
    ]


def test_amendments_drop_stale_labels_and_add_kernel_calls(tmp_path):
    """Issue 18's amendments: labels of another computation are removed, and a
    module learns how often it dispatches each kernel."""
    run = tmp_path / "run"
    run.mkdir()
    k = kernel(0)
    rec = module(0, kernels=[k["id"]])
    append_records(run / "modules.jsonl", [rec])
    append_records(run / "kernels.jsonl", [k])
    calls = {
        "kind": "amendment",
        "id": rec["id"],
        "targets": {},
        "kernel_calls": {k["id"]: 6},
        "provenance": {"made_by": "relabel"},
    }
    repair = {
        "kind": "amendment",
        "record_kind": "kernel",
        "id": k["id"],
        "targets": {"nvidia_sm80.shared_bytes": 34304.0},
        "drop_targets": ["nvidia_sm80.registers"],
        "provenance": {"made_by": "relabel"},
    }
    assert validate_amendment(calls) == [] and validate_amendment(repair) == []
    assert validate_amendment({**calls, "kernel_calls": {k["id"]: 0}})
    assert validate_amendment({**repair, "drop_targets": ["registers"]})
    append_records(run / "amendments.jsonl", [calls, repair])
    problems = []
    (merged,) = iter_dataset("modules", run, problems)
    assert merged["kernel_calls"] == {k["id"]: 6}
    assert validate_record(merged) == []
    (fixed,) = iter_dataset("kernels", run, problems)
    assert fixed["targets"] == {"nvidia_sm80.shared_bytes": 34304.0}
    assert fixed["provenance"]["amendments"][0]["dropped"] == ["nvidia_sm80.registers"]
    assert problems == []
    # kernel_calls must name the module's own kernels with counts >= 1
    assert validate_record({**merged, "kernel_calls": {"f" * 64: 2}})


def test_pack_judges_bundled_records_with_their_amendments(tmp_path):
    """A run that holds bundled records as loading returns them (amendments
    merged, say a run folder seeded from ``iter_dataset``) replaces nothing:
    a record replaced before is not replaced again, and targets an amendment
    added are not 'more targets'."""
    run, home = tmp_path / "run", tmp_path / "data"
    run.mkdir()
    timeout = [{"stage": "compile:rocm", "message": "timed out after 400 s"}]
    partial = module(0, status="partial", failures=timeout)
    retried = module(1, status="partial", failures=timeout)
    append_records(run / "modules.jsonl", [partial, retried])
    append_records(
        run / "amendments.jsonl",
        [amendment(partial, {"nvidia_h100.latency_us": 10.0})],
    )
    pack(run, home)
    (run / "amendments.jsonl").unlink()
    (run / "modules.jsonl").unlink()
    append_records(
        run / "modules.jsonl",
        [
            module(
                1, targets={"cpu_x86_64_v3.instructions": 5.0, "amd_gfx942.vgprs": 9.0}
            )
        ],
    )
    assert pack(run, home).replaced == {"modules": [retried["id"]]}
    after = _digest(home.iterdir())

    seeded = tmp_path / "seeded"
    seeded.mkdir()
    loaded = list(iter_dataset("modules", home))
    assert "nvidia_h100.latency_us" in loaded[0]["targets"]
    assert loaded[1]["status"] == "ok"
    append_records(seeded / "modules.jsonl", loaded)
    result = pack(seeded, home)
    assert result.replaced == {} and result.new_shards == []
    assert result.already_bundled["modules"] == 2
    assert _digest(home.iterdir()) == after
