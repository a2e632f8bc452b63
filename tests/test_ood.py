"""The out-of-distribution suite: its specs, its CLI, and its bundled shards kept apart."""

import collections
import json

import pytest
from dataset_records import kernel, module

from mlircost_classic.cli import build_parser, main
from mlircost_classic.collect import (
    FAMILIES,
    HARDWARE,
    OOD_FAMILIES,
    OOD_SIZES,
    ProgramSpec,
    ood_specs,
)
from mlircost_classic.datasets import (
    append_records,
    dataset_info,
    get_data_home,
    iter_dataset,
    load_dataset,
    pack,
    shard_paths,
    validate_record,
)

DETERMINISTIC = {
    f"{hw.name}.{metric}" for hw in HARDWARE.values() for metric in hw.deterministic
}
OOD_HOME = get_data_home(suite="ood")
bundled = pytest.mark.skipif(
    not shard_paths("modules", OOD_HOME), reason="no bundled ood shards"
)


# --- specs -------------------------------------------------------------------


def test_ood_specs_cover_every_size_of_every_family_in_f32():
    specs = ood_specs()
    assert [s.family for s in specs] == sorted(s.family for s in specs)
    assert set(OOD_SIZES) == set(OOD_FAMILIES) == {s.family for s in specs}
    assert len(specs) == sum(len(sizes) for sizes in OOD_SIZES.values())
    assert all(s.params["dtype"] == "f32" for s in specs)
    assert len({s.key() for s in specs}) == len(specs)
    for spec in specs:
        json.loads(spec.key())  # parameters stay JSON-serialisable


def test_ood_specs_are_deterministic_and_selectable():
    assert [s.key() for s in ood_specs()] == [s.key() for s in ood_specs()]
    picked = ood_specs(["hf_vit", "hf_bert", "hf_vit"])
    assert [s.family for s in picked] == ["hf_vit"] * len(OOD_SIZES["hf_vit"]) + [
        "hf_bert"
    ] * len(OOD_SIZES["hf_bert"])


def test_ood_families_are_not_training_families():
    assert not set(OOD_FAMILIES) & set(FAMILIES)
    assert all(name.startswith("hf_") for name in OOD_FAMILIES)


def test_unknown_ood_family_is_rejected():
    with pytest.raises(ValueError, match="unknown OOD families"):
        ood_specs(["mlp"])


# --- CLI ---------------------------------------------------------------------


def test_collect_suite_parses(tmp_path):
    parser = build_parser()
    args = parser.parse_args(["collect", "--suite", "ood", "--out", str(tmp_path)])
    assert args.suite == "ood"
    assert parser.parse_args(["collect", "--out", str(tmp_path)]).suite == "main"
    with pytest.raises(SystemExit):
        parser.parse_args(["collect", "--suite", "zoo", "--out", str(tmp_path)])


@pytest.fixture
def collected(monkeypatch):
    """What ``mlircost collect --suite ood`` hands ``collect_specs`` (faked)."""
    seen = {}

    class Summary:
        def to_text(self):
            return "done"

    def fake_collect_specs(specs, hardware, out_dir, **kwargs):
        seen.update(specs=list(specs), hardware=hardware, kwargs=kwargs)
        return Summary()

    monkeypatch.setattr(
        "mlircost_classic.collect.collect_specs", fake_collect_specs, raising=False
    )
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())
    return seen


def test_collect_suite_ood_collects_the_ood_specs(tmp_path, collected):
    argv = ["collect", "--suite", "ood", "--families", "hf_gpt2", "--out"]
    assert main([*argv, str(tmp_path), "--resume", "--quiet", "--measure-known"]) == 0
    assert collected["specs"] == ood_specs(["hf_gpt2"])
    assert collected["kwargs"]["resume"] is True
    assert collected["kwargs"]["known_programs"] is None


def test_collect_suite_ood_leaves_out_the_bundled_sizes(tmp_path, collected, capsys):
    bundled = {
        rec["key"]: rec["status"]
        for rec in iter_dataset("modules", get_data_home(suite="ood"))
        if rec["family"] == "hf_gpt2"
    }
    assert bundled and all(status != "failed" for status in bundled.values())
    argv = ["collect", "--suite", "ood", "--families", "hf_gpt2", "--out"]
    assert main([*argv, str(tmp_path)]) == 0
    every = ood_specs(["hf_gpt2"])
    assert collected["specs"] == [s for s in every if s.key() not in bundled]
    assert len(collected["specs"]) == len(every) - len(bundled)
    # the bundled programs go along, so a size that lowers to one is not measured
    known = collected["kwargs"]["known_programs"]
    assert {key for key, _ in known.values()} >= set(bundled)
    assert f"{len(bundled)} of {len(every)} OOD programs are bundled" in (
        capsys.readouterr().out
    )


def test_collect_source_leaves_out_the_bundled_specs(tmp_path, collected, capsys):
    # lowering a bundled spec again only to find its program bundled costs a
    # lowering each (a torchvision network: tens of seconds)
    from mlircost_classic.collect import network_specs

    bundled = {
        rec["key"]: rec["status"]
        for rec in iter_dataset("modules", get_data_home())
        if rec["family"] == "tv_resnet18"
    }
    assert bundled and "failed" not in bundled.values()
    argv = ["collect", "--source", "torchvision", "--families", "tv_resnet18"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    every = network_specs("torchvision", ["tv_resnet18"])
    kept = [s for s in every if s.key() not in bundled]
    assert kept and collected["specs"] == kept
    known = collected["kwargs"]["known_programs"]
    assert {key for key, _ in known.values()} >= set(bundled)
    assert f"{len(every) - len(kept)} of {len(every)} programs are bundled" in (
        capsys.readouterr().out
    )
    # --measure-known lowers every one of them
    assert main([*argv, "--out", str(tmp_path), "--measure-known", "--quiet"]) == 0
    assert collected["specs"] == every
    assert collected["kwargs"]["known_programs"] is None


def test_unbundled_specs_retries_only_timed_out_failures(monkeypatch):
    from mlircost_classic.cli import _collect

    class Spec:
        def __init__(self, key):
            self._key = key

        def key(self):
            return self._key

    records = [
        {"key": "ok", "status": "ok", "failures": []},
        {"key": "partial", "status": "partial", "failures": [{"message": "x"}]},
        {"key": "broken", "status": "failed", "failures": [{"message": "rejected"}]},
        {
            "key": "slow",
            "status": "failed",
            "failures": [{"message": "lower timed out"}],
        },
    ]
    monkeypatch.setattr(
        "mlircost_classic.datasets.iter_dataset", lambda kind, home: iter(records)
    )
    specs = [Spec(k) for k in ("ok", "partial", "broken", "slow", "new")]
    kept, known = _collect._unbundled_specs(specs, "main", quiet=True)
    assert [s.key() for s in kept] == ["slow", "new"]
    assert known == {}


def test_collect_suite_ood_errors(tmp_path, monkeypatch, capsys):
    out = ["--out", str(tmp_path)]
    assert main(["collect", "--suite", "ood", "--input", "x.mlir", *out]) == 2
    assert "--input" in capsys.readouterr().err
    assert main(["collect", "--suite", "ood", "--families", "mlp", *out]) == 2
    assert "unknown OOD families" in capsys.readouterr().err
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert main(["collect", "--suite", "ood", *out]) == 2
    assert "[ood]" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


# --- suites in a data home ---------------------------------------------------


def test_suites_are_read_apart(tmp_path, capsys):
    suites = {
        "main": ([module(0, family="mlp")], [kernel(0, family="mlp")]),
        "ood": (
            [module(1, family="hf_bert")],
            [kernel(0, family="hf_bert"), kernel(1, family="hf_bert")],
        ),
    }
    for name, (modules, kernels) in suites.items():
        run = tmp_path / name
        run.mkdir()
        append_records(run / "modules.jsonl", modules)
        append_records(run / "kernels.jsonl", kernels)
    home = tmp_path / "data"
    pack(tmp_path / "main", home)
    argv = ["dataset", "pack", str(tmp_path / "ood"), "--data-home", str(home)]
    assert main([*argv, "--suite", "ood"]) == 0
    assert shard_paths("modules", home / "ood")

    assert load_dataset(data_home=home).groups == ["mlp"]
    assert load_dataset(data_home=home, suite="ood").groups == ["hf_bert"]
    # Records without a source field (written before it existed) are the
    # families' in the main suite and the transformers architectures' in the
    # OOD suite (its first 28 modules were such records).
    assert not {"source"} & (suites["main"][0][0].keys() | suites["ood"][0][0].keys())
    assert list(load_dataset(data_home=home).sources) == ["families"]
    assert list(load_dataset(data_home=home, suite="ood").sources) == ["transformers"]
    assert dataset_info(home, suite="ood").counts["modules"]["source"] == {
        "transformers": 1
    }
    ood = load_dataset(data_home=home, suite="ood", source=["families"])
    assert len(ood.data) == 0
    # The kernel met in both suites is in neither: not an OOD kernel (training
    # has it) and not a training kernel (a model fitted on it has seen part
    # of the OOD programs).
    kernels = load_dataset("kernels", data_home=home, suite="ood")
    assert kernels.ids == [kernel(1, family="hf_bert")["id"]]
    assert load_dataset("kernels", data_home=home).ids.tolist() == []
    assert len(list(iter_dataset("kernels", home))) == 1
    assert len(list(iter_dataset("kernels", home / "ood"))) == 2
    assert dataset_info(home, suite="ood").counts["modules"]["family"] == {"hf_bert": 1}
    assert main(["dataset", "info", "--data-home", str(home), "--suite", "ood"]) == 0
    out = capsys.readouterr().out
    assert "hf_bert 1" in out and "mlp" not in out


def test_unknown_suite_is_rejected():
    with pytest.raises(ValueError, match="suite must be one of"):
        load_dataset(suite="zoo")
    with pytest.raises(ValueError, match="suite must be one of"):
        dataset_info(suite="zoo")


# --- the bundled ood shards --------------------------------------------------


@pytest.fixture(scope="module", params=["modules", "kernels"])
def ood_records(request):
    return list(iter_dataset(request.param, OOD_HOME))


@bundled
def test_bundled_ood_records_validate_and_are_unique(ood_records):
    problems = {r["id"][:12]: validate_record(r) for r in ood_records}
    assert {k: v for k, v in problems.items() if v} == {}
    counts = collections.Counter(r["id"] for r in ood_records)
    assert [i for i, n in counts.items() if n > 1] == []
    assert {r["family"] for r in ood_records} <= set(OOD_FAMILIES)


@bundled
def test_bundled_ood_records_have_a_deterministic_target(ood_records):
    lacking = [
        r["id"][:12]
        for r in ood_records
        if r["status"] == "ok" and not DETERMINISTIC & set(r["targets"])
    ]
    assert lacking == []
    assert any(r["status"] == "ok" for r in ood_records)


@bundled
def test_bundled_ood_records_stay_out_of_the_main_dataset(ood_records):
    kind = "modules" if ood_records[0]["kind"] == "module" else "kernels"
    main_records = {r["id"]: r for r in iter_dataset(kind)}
    assert not {r["family"] for r in main_records.values()} & set(OOD_FAMILIES)
    shared = [r for r in ood_records if r["id"] in main_records]
    # Only a kernel can be met in both suites: the same dispatch source, so
    # the same text and labels (load_dataset leaves it out of both suites).
    # Real networks share layer shapes, so their programs meet some: MPNet's
    # f16 and f32 programs of the transformers source compile dispatches to
    # the same texts as the RoBERTa / T5 encoders of the OOD suite, Nomic-BERT
    # ones as Llama. The bound keeps 90% of the OOD kernels for evaluation.
    assert kind == "kernels" or shared == []
    for rec in shared:
        twin = main_records[rec["id"]]
        assert (rec["ir"], rec["targets"]) == (twin["ir"], twin["targets"])
    assert len(shared) <= 0.10 * len(ood_records)


@bundled
def test_bundled_ood_modules_link_to_ood_kernels():
    kernel_ids = {r["id"] for r in iter_dataset("kernels", OOD_HOME)}
    modules = list(iter_dataset("modules", OOD_HOME))
    assert [k for r in modules for k in r["kernels"] if k not in kernel_ids] == []


@bundled
@pytest.mark.parametrize("kind", ["modules", "kernels"])
def test_load_dataset_ood_is_disjoint_from_main(kind):
    ds = load_dataset(kind, suite="ood")
    assert len(ds.data) == len(ds.groups) == ds.target.shape[0] > 0
    assert set(ds.groups) <= set(OOD_FAMILIES)
    assert not set(ds.ids) & set(load_dataset(kind).ids)


# --- building and lowering ---------------------------------------------------


@pytest.mark.collect
def test_smallest_ood_program_builds_and_lowers():
    pytest.importorskip("transformers")
    pytest.importorskip("torch_mlir")
    from mlircost_classic.collect import lower_spec

    spec = ood_specs(["hf_bert"])[0]
    assert isinstance(spec, ProgramSpec)
    lowered = lower_spec(spec, ["torch", "linalg"])
    assert lowered.errors == {}
    assert "torch.aten" in lowered.texts["torch"]
    assert "linalg.batch_matmul" in lowered.texts["linalg"]
    assert "dialect_resources" not in lowered.texts["linalg"]
