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


def test_no_two_records_share_a_compiled_text(records):
    # Specs whose parameters leave the IR unchanged count once (no padding).
    texts = collections.Counter(
        r["ir"][r["compiled_level"]]
        for r in records
        if r["compiled_level"] in r.get("ir", {})
    )
    assert [t[:200] for t, n in texts.items() if n > 1] == []


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
def test_dataset_verify_reproduces_three_records():
    """Re-collect 3 bundled records: compile-derived targets match exactly.

    The instruction counts of shard 00000 were taken with ``iree-run-module``
    run from its install path, whose length shifts libc's memcpy alignment by a
    few instructions (7 of 196,095 seen); the collector now runs a copy by a
    fixed name. Until those records are re-measured, their counts are held to
    1e-4 relative here instead of exactly.
    """
    pytest.importorskip("iree.compiler")
    from mlircost_classic.collect import verify

    report = verify(sample=3, seed=0)
    assert len(report.checked) == 3
    exact = [r for r in report.rows if r["deterministic"]]
    assert len(exact) >= 3 * 15
    off = [
        r
        for r in report.mismatches
        if not (
            r["target"] == "cpu_x86_64_v3.instructions"
            and r["measured"] is not None
            and abs(r["measured"] - r["stored"]) <= 1e-4 * r["stored"]
        )
    ]
    assert off == [], report.to_text()
