"""Tests of datasets.architecture_clusters: same-design architectures as one group."""

import numpy as np
import pytest
from dataset_records import kernel, module

from mlircost_classic.datasets import (
    append_records,
    architecture_clusters,
    cluster_families,
    cluster_groups,
    dispatch_signature,
    load_dataset,
)

EXPORT = (
    "hal.executable public @main_dispatch_{n} {{\n"
    "  hal.executable.variant public @x target(#t) {{\n"
    "    hal.executable.export public @main_dispatch_{n}_{sig} ordinal(0) "
    "layout(#l) count(%d: !hal.device) -> (index, index, index) {{ }}\n"
    "  }}\n}}\n"
)


def test_signature_drops_the_dispatch_prefix():
    text = EXPORT.format(n=14, sig="matmul_1024x48x192_f32")
    assert dispatch_signature(text) == "matmul_1024x48x192_f32"
    other = EXPORT.format(n=3, sig="matmul_1024x48x192_f32").replace("main", "forward")
    assert dispatch_signature(other) == "matmul_1024x48x192_f32"
    assert dispatch_signature("func.func @f() { return }") is None


def test_programs_with_the_same_dispatches_join_their_architectures():
    programs = [
        ("hf_electra", ["mm_32x64", "softmax_32", "ln_64"]),
        ("hf_electra", ["mm_64x128", "softmax_64"]),
        ("hf_mpnet", ["mm_32x64", "softmax_32", "ln_64"]),  # electra's twin
        ("hf_ernie", ["mm_64x128", "softmax_64", "gelu_64"]),  # 2/3: below 0.8
        ("tv_resnet18", ["conv_3x3", "pool"]),
        ("tv_resnet34", ["conv_3x3", "pool", "add"]),  # 2/3
    ]
    clusters = cluster_families(programs)
    assert clusters["hf_electra"] == clusters["hf_mpnet"] == "hf_electra+1"
    assert clusters["hf_ernie"] == "hf_ernie"
    assert clusters["tv_resnet18"] == "tv_resnet18"
    assert clusters["tv_resnet34"] == "tv_resnet34"
    # a lower threshold joins the 2-of-3 pairs, transitively through electra
    loose = cluster_families(programs, threshold=0.6)
    assert len({loose[f] for f in ("hf_electra", "hf_mpnet", "hf_ernie")}) == 1
    assert loose["tv_resnet18"] == loose["tv_resnet34"] == "tv_resnet18+1"
    assert loose["hf_electra"] == "hf_electra+2"


def test_no_join_within_a_family_nor_through_empty_programs():
    programs = [
        ("a", ["x"]),
        ("a", ["x"]),  # the same family twice is no link
        ("b", []),
        ("c", []),  # programs without dispatches link nothing
        ("d", ["y"]),
    ]
    assert cluster_families(programs) == {"a": "a", "b": "b", "c": "c", "d": "d"}
    assert cluster_families([]) == {}
    with pytest.raises(ValueError, match="threshold"):
        cluster_families(programs, threshold=0)


def test_cluster_groups_keeps_unknown_families():
    groups = cluster_groups(["a", "b", "z"], {"a": "a+1", "b": "a+1"})
    assert groups.dtype == object
    assert list(groups) == ["a+1", "a+1", "z"]


def test_architecture_clusters_reads_a_data_home(tmp_path):
    kernels = [
        kernel(0, family="hf_a"),
        kernel(1, family="hf_a"),
        kernel(2, family="hf_c"),
    ]
    sigs = ["matmul_32x64_f32", "softmax_32_f32", "conv_8x8_f32"]
    for k, sig in zip(kernels, sigs, strict=True):
        k["ir"]["dispatch"] = EXPORT.format(n=0, sig=sig)
    kernels = [{**k, "id": f"{i}" * 64} for i, k in enumerate(kernels)]
    ids = [k["id"] for k in kernels]
    modules = [
        module(0, family="hf_a", kernels=ids[:2]),
        module(1, family="hf_b", kernels=ids[:2]),  # a's dispatches again
        module(2, family="hf_c", kernels=ids[2:]),
        module(3, family="hf_d", kernels=[]),
    ]
    append_records(tmp_path / "kernels.jsonl", kernels)
    append_records(tmp_path / "modules.jsonl", modules)
    clusters = architecture_clusters(tmp_path)
    assert clusters == {
        "hf_a": "hf_a+1",
        "hf_b": "hf_a+1",
        "hf_c": "hf_c",
        "hf_d": "hf_d",
    }
    groups = cluster_groups(np.array(["hf_b", "hf_c"], dtype=object), clusters)
    assert list(groups) == ["hf_a+1", "hf_c"]


def test_load_dataset_groups_by_cluster(tmp_path):
    sig = EXPORT.format(n=0, sig="matmul_32x64_f32")
    k = {**kernel(0, family="hf_a"), "id": "a" * 64}
    k["ir"]["dispatch"] = sig
    append_records(tmp_path / "kernels.jsonl", [k])
    append_records(
        tmp_path / "modules.jsonl",
        [module(0, family="hf_a", kernels=[k["id"]]), module(1, family="hf_c")],
    )
    by_family = load_dataset("modules", data_home=tmp_path)
    assert list(by_family.groups) == ["hf_a", "hf_c"]
    assert list(
        load_dataset("modules", data_home=tmp_path, groups="cluster").groups
    ) == [
        "hf_a",
        "hf_c",
    ]
    # a new architecture whose program compiles to a's dispatch joins it; the
    # kept answer follows the grown files
    append_records(
        tmp_path / "modules.jsonl", [module(2, family="hf_b", kernels=[k["id"]])]
    )
    modules = load_dataset("modules", data_home=tmp_path, groups="cluster")
    assert list(modules.families) == ["hf_a", "hf_c", "hf_b"]
    assert list(modules.groups) == ["hf_a+1", "hf_c", "hf_a+1"]
    kernels = load_dataset("kernels", data_home=tmp_path, groups="cluster")
    assert list(kernels.groups) == ["hf_a+1"]
    with pytest.raises(ValueError, match="groups must be one of"):
        load_dataset("modules", data_home=tmp_path, groups="architecture")
