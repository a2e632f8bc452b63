"""The dataset shipped in the package: schema, uniqueness, labels, reproducibility."""

import collections

import numpy as np
import pytest

from mlircost_classic.collect import HARDWARE
from mlircost_classic.datasets import (
    iter_dataset,
    load_dataset,
    shard_paths,
    validate_record,
)

pytestmark = pytest.mark.skipif(
    not shard_paths("modules"), reason="no bundled shards in this checkout"
)

DETERMINISTIC = {
    f"{hw.name}.{metric}" for hw in HARDWARE.values() for metric in hw.deterministic
}


@pytest.fixture(scope="module", params=["modules", "kernels"])
def records(request):
    return list(iter_dataset(request.param))


def test_every_bundled_record_validates(records):
    problems = {r["id"][:12]: validate_record(r) for r in records}
    assert {k: v for k, v in problems.items() if v} == {}


def test_ids_are_unique(records):
    counts = collections.Counter(r["id"] for r in records)
    assert [i for i, n in counts.items() if n > 1] == []


def test_no_successful_record_lacks_a_deterministic_target(records):
    lacking = [
        r["id"][:12]
        for r in records
        if r["status"] == "ok" and not DETERMINISTIC & set(r["targets"])
    ]
    assert lacking == []


def test_module_records_link_to_bundled_kernels():
    kernel_ids = {r["id"] for r in iter_dataset("kernels")}
    missing = [
        k for r in iter_dataset("modules") for k in r["kernels"] if k not in kernel_ids
    ]
    assert missing == []


def test_load_dataset_gives_texts_and_finite_targets():
    ds = load_dataset("modules", level="linalg")
    assert len(ds.data) == ds.target.shape[0] == len(ds.groups)
    assert all("func.func" in text for text in ds.data[:20])
    assert len(set(ds.groups)) >= 15
    column = list(ds.target_names).index("cpu_x86_64_v3.instructions")
    measured = ds.target[:, column][~np.isnan(ds.target[:, column])]
    assert measured.size > 0.9 * len(ds.data)
    assert (measured > 0).all()


@pytest.mark.collect
def test_dataset_verify_reproduces_three_records(capsys):
    pytest.importorskip("iree.compiler")
    from mlircost_classic.cli import main

    code = main(["dataset", "verify", "--sample", "3"])
    out = capsys.readouterr().out
    assert "-> PASS" in out, out
    assert code == 0
