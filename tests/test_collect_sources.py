"""The network sources (torchvision, transformers) and the ``source`` of records."""

import importlib.util
import json
import subprocess
import sys

import pytest
from dataset_records import kernel, module

from mlircost_classic.cli import build_parser, main
from mlircost_classic.collect import (
    FAMILIES,
    NETWORK_SOURCES,
    OOD_FAMILIES,
    family_source,
    find_family,
    network_specs,
)
from mlircost_classic.collect._torchvision import TORCHVISION_SIZES
from mlircost_classic.collect._transformers import TRANSFORMERS_SIZES
from mlircost_classic.datasets import (
    SOURCES,
    append_records,
    dataset_info,
    load_dataset,
    validate_record,
)

SIZES = {"torchvision": TORCHVISION_SIZES, "transformers": TRANSFORMERS_SIZES}
# Model types of the OOD suite's architectures and their renamed variants.
OOD_TYPES = {
    "bert", "roberta", "distilbert", "albert", "gpt2", "t5", "mt5", "umt5",
    "llama", "bart", "whisper", "vit", "swin", "resnet", "convnext", "mobilevit",
    "xlm_roberta", "camembert",
}  # fmt: skip


# --- the lists of programs -----------------------------------------------------


@pytest.mark.parametrize("source", NETWORK_SOURCES)
def test_network_specs_go_round_the_architectures(source):
    specs = network_specs(source)
    sizes = SIZES[source]
    assert len(specs) == sum(len(s) for s in sizes.values())
    assert len({s.key() for s in specs}) == len(specs)
    # The first round holds every architecture once, in the table's order.
    assert [s.family for s in specs[: len(sizes)]] == list(sizes)
    assert [s.params for s in specs[: len(sizes)]] == [s[0] for s in sizes.values()]
    for spec in specs:
        json.loads(spec.key())
        assert spec.params["dtype"] in ("f32", "f16", "bf16")
    assert [s.key() for s in network_specs(source)] == [s.key() for s in specs]


@pytest.mark.parametrize("source", NETWORK_SOURCES)
def test_every_architecture_has_several_programs_and_element_types(source):
    for name, sizes in SIZES[source].items():
        assert len(sizes) >= 2 or name == "tv_maxvit_t", name
        assert len({json.dumps(s, sort_keys=True) for s in sizes}) == len(sizes)
    dtypes = {s["dtype"] for sizes in SIZES[source].values() for s in sizes}
    assert dtypes == {"f32", "f16", "bf16"}


def test_network_specs_select_and_reject():
    picked = network_specs("transformers", ["hf_mistral", "hf_deit", "hf_mistral"])
    assert [s.family for s in picked[:2]] == ["hf_mistral", "hf_deit"]
    assert {s.family for s in picked} == {"hf_mistral", "hf_deit"}
    with pytest.raises(ValueError, match="unknown torchvision architectures"):
        network_specs("torchvision", ["hf_mistral"])
    with pytest.raises(ValueError, match="unknown network source"):
        network_specs("timm")


def test_sources_do_not_share_names_and_keep_the_ood_suite_out():
    tv, hf = set(TORCHVISION_SIZES), set(TRANSFORMERS_SIZES)
    assert all(n.startswith("tv_") for n in tv)
    assert all(n.startswith("hf_") for n in hf)
    assert not (tv | hf) & (set(FAMILIES) | set(OOD_FAMILIES))
    assert not {n.removeprefix("hf_") for n in hf} & OOD_TYPES
    assert not any("timm" in n for n in tv | hf)


def test_family_source_and_find_family():
    assert family_source("mlp") == "families"
    assert family_source("tv_resnet18") == "torchvision"
    assert family_source("hf_mistral") == "transformers"
    assert family_source("hf_bert") == "transformers"  # the OOD suite's
    assert find_family("hf_bert") is OOD_FAMILIES["hf_bert"]
    assert find_family("mlp") is FAMILIES["mlp"]
    assert find_family("tv_resnet18").name == "tv_resnet18"
    with pytest.raises(KeyError, match="no source has a family named"):
        family_source("resnet18")


# --- building the programs ------------------------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None, reason="torchvision not installed"
)
def test_torchvision_imports_beside_a_cpu_torch_and_builds_with_bf16():
    from mlircost_classic.collect import import_torchvision

    assert import_torchvision().models.get_model is not None
    spec = network_specs("torchvision", ["tv_squeezenet1_1"])[2]
    assert spec.params["dtype"] == "bf16"
    module_, (x,) = find_family(spec.family).build(spec.params)
    import torch

    assert x.dtype == torch.bfloat16 and x.shape == (2, 3, 64, 64)
    assert module_(x).shape == (2, 1000)
    # Seeded from the spec: the same weights twice.
    again, _ = find_family(spec.family).build(spec.params)
    assert torch.equal(next(module_.parameters()), next(again.parameters()))


@pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None,
    reason="transformers not installed",
)
def test_transformers_architecture_builds_from_its_config_only():
    import torch

    spec = network_specs("transformers", ["hf_mistral"])[0]
    module_, (ids,) = find_family(spec.family).build(spec.params)
    assert ids.shape == (1, 32) and ids.dtype == torch.int64
    assert module_(ids).shape == (1, 32, 64)
    assert module_.model.config.num_key_value_heads == 1


BUILD_IN_A_FRESH_PROCESS = """
from mlircost_classic.collect import find_family, network_specs
spec = network_specs("transformers", ["hf_deit"])[0]
module, (x,) = find_family(spec.family).build(spec.params)
print(tuple(module(x).shape))
"""


@pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None
    or importlib.util.find_spec("torchvision") is None,
    reason="needs transformers and torchvision",
)
def test_transformers_builds_beside_torchvision_in_a_fresh_process():
    # transformers imports torchvision itself, before any torchvision program.
    out = subprocess.run(
        [sys.executable, "-c", BUILD_IN_A_FRESH_PROCESS],
        capture_output=True,
        text=True,
        check=True,
    )
    # 16 patches, the class and the distillation token
    assert out.stdout.strip() == "(1, 18, 64)"


@pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None,
    reason="transformers not installed",
)
def test_decoders_also_take_one_step_with_a_kv_cache():
    import torch

    sizes = TRANSFORMERS_SIZES["hf_mixtral"]
    steps = [s for s in sizes if "past" in s]
    assert len(steps) == 2 and len(sizes) == 8
    assert not any("past" in s for s in TRANSFORMERS_SIZES["hf_deit"])
    spec = next(
        s for s in network_specs("transformers", ["hf_mixtral"]) if "past" in s.params
    )
    module_, (ids, *past) = find_family(spec.family).build(spec.params)
    p = spec.params
    assert ids.shape == (p["batch"], 1) and len(past) == 2 * p["layers"]
    # Grouped-query attention: the cache holds half the heads.
    assert past[0].shape == (
        p["batch"],
        p["heads"] // 2,
        p["past"],
        p["hidden"] // p["heads"],
    )
    assert module_(ids, *past).shape == (p["batch"], 1, p["hidden"])
    assert past[0].dtype == torch.float32


@pytest.mark.collect
def test_a_network_of_each_source_lowers_to_linalg():
    from mlircost_classic.collect import lower_spec

    for source, name in (
        ("torchvision", "tv_squeezenet1_1"),
        ("transformers", "hf_deit"),
    ):
        if importlib.util.find_spec(source) is None:
            continue
        lowered = lower_spec(network_specs(source, [name])[0], ["linalg"])
        assert "linalg.generic" in lowered.texts["linalg"], lowered.errors


# --- records and load_dataset ----------------------------------------------------------


def test_source_is_validated_and_optional():
    assert validate_record(module(0)) == []
    assert validate_record(module(0, source="torchvision", family="tv_x")) == []
    problems = validate_record(module(0, source="timm"))
    assert problems == [f"source: 'timm' is not one of {SOURCES}"]


def test_load_dataset_selects_sources(tmp_path):
    append_records(
        tmp_path / "modules.jsonl",
        [
            module(0),  # no source field: families
            module(1, family="tv_resnet18", source="torchvision"),
            module(2, family="hf_mistral", source="transformers"),
            module(3, family="user", source="user"),
        ],
    )
    ds = load_dataset(data_home=tmp_path)
    assert list(ds.sources) == ["families", "torchvision", "transformers", "user"]
    assert list(ds.groups) == ["mlp", "tv_resnet18", "hf_mistral", "user"]
    ds = load_dataset(data_home=tmp_path, source="torchvision")
    assert list(ds.groups) == ["tv_resnet18"] and len(ds.data) == 1
    ds = load_dataset(data_home=tmp_path, source=["families", "transformers"])
    assert list(ds.groups) == ["mlp", "hf_mistral"]
    with pytest.raises(ValueError, match="unknown sources"):
        load_dataset(data_home=tmp_path, source="timm")
    pd = pytest.importorskip("pandas")
    frame = load_dataset(data_home=tmp_path, as_frame=True).frame
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["source"]) == ["families", "torchvision", "transformers", "user"]
    info = dataset_info(tmp_path)
    assert info.counts["modules"]["source"] == dict.fromkeys(SOURCES, 1)
    assert "source: families 1, torchvision 1" in info.to_text()


def test_kernel_source_defaults_to_families(tmp_path):
    append_records(tmp_path / "kernels.jsonl", [kernel(0), kernel(1)])
    ds = load_dataset("kernels", data_home=tmp_path, source="families")
    assert len(ds.data) == 2
    assert len(load_dataset("kernels", data_home=tmp_path, source="user").data) == 0


# --- the command line -------------------------------------------------------------------


def test_collect_source_parses_and_refuses_bad_combinations(tmp_path, capsys):
    parser = build_parser()
    args = parser.parse_args(
        ["collect", "--source", "torchvision", "--out", str(tmp_path)]
    )
    assert args.source == "torchvision"
    assert parser.parse_args(["collect", "--out", str(tmp_path)]).source == "families"
    with pytest.raises(SystemExit):
        parser.parse_args(["collect", "--source", "timm", "--out", str(tmp_path)])
    code = main(
        [
            "collect",
            "--source",
            "transformers",
            "--suite",
            "ood",
            "--out",
            str(tmp_path),
        ]
    )
    assert code != 0
    assert "--source goes with neither" in capsys.readouterr().err
    code = main(
        [
            "collect",
            "--source",
            "torchvision",
            "--families",
            "tv_nope",
            "--out",
            str(tmp_path),
        ]
    )
    assert code != 0
    assert "unknown torchvision architectures ['tv_nope']" in capsys.readouterr().err
