"""The target table and the one grammar that turns target words into columns."""

import math

import numpy as np
import pytest

from mlircost_classic.datasets import (
    HARDWARE,
    TARGETS,
    Hardware,
    Metric,
    clip_to_domain,
    resolve_target,
    select_targets,
    target_names,
    target_unit,
)
from mlircost_classic.datasets._targets import AGGREGATIONS

NAMES = [
    "amd_gfx942.occupancy",
    "cpu_host.latency_us",
    "cpu_x86_64_v3.instructions",
    "nvidia_sm80.occupancy",
    "nvidia_sm80.registers",
]


def test_every_target_has_a_unit_a_domain_and_a_maker():
    assert set(TARGETS) == set(target_names())
    for name, target in TARGETS.items():
        assert name == f"{target.hardware.name}.{target.metric.name}"
        assert target.unit and target.tool and target.backend
        lower, upper = target.bounds
        assert lower == 0.0 and upper > 0
        assert target.aggregate in (*AGGREGATIONS, None)
    assert TARGETS["nvidia_sm80.occupancy"].bounds == (0.0, 1.0)
    assert TARGETS["cpu_x86_64_v3.instructions"].bounds == (0.0, math.inf)
    assert TARGETS["nvidia_sm80.registers"].aggregate == "max"
    assert TARGETS["amd_gfx942.spills"].aggregate == "sum"
    assert TARGETS["cpu_x86_64_v3.instructions"].aggregate == "calls"
    assert TARGETS["cpu_x86_64_v3.dispatches"].aggregate == "count"
    assert not TARGETS["cpu_host.latency_us"].deterministic


def test_kernel_targets_are_the_aggregated_ones():
    for hw in HARDWARE.values():
        kernel = target_names([hw.name], kind="kernels")
        assert kernel == [
            f"{hw.name}.{m.name}"
            for m in hw.measures
            if m.aggregate not in (None, "count")
        ]
    assert "cpu_x86_64_v3.dispatches" not in target_names(kind="kernels")
    with pytest.raises(ValueError, match="kind must be one of"):
        target_names(kind="programs")


def test_bad_aggregation_is_refused():
    with pytest.raises(ValueError, match="aggregate"):
        Metric("x", "unit", "mean")


def test_a_new_hardware_is_one_entry():
    hw = Hardware(
        name="toy",
        measures=(Metric("cycles", "cycles", "sum"),),
        backend="callgrind",
        compile_for=("llvm-cpu",),
        tool="a tool",
        description="a toy",
    )
    assert hw.metrics == ("cycles",) and hw.kernel_metrics == ("cycles",)
    assert hw.deterministic == {"cycles"}


def test_units():
    assert target_unit("cpu_x86_64_v3.instructions") == "instructions"
    assert target_unit("amd_gfx942.occupancy") == "fraction of max waves"
    assert target_unit("nvidia_sm80.occupancy") == "fraction of max warps"
    assert target_unit("made_up.thing") == ""


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (None, NAMES),
        ("occupancy", ["amd_gfx942.occupancy", "nvidia_sm80.occupancy"]),
        ("nvidia_sm80", ["nvidia_sm80.occupancy", "nvidia_sm80.registers"]),
        (["registers", "cpu_host"], ["cpu_host.latency_us", "nvidia_sm80.registers"]),
        (["nvidia_sm80.registers", "registers"], ["nvidia_sm80.registers"]),
    ],
)
def test_select_targets(words, expected):
    assert select_targets(words, NAMES) == expected


def test_select_targets_refuses_unknown_words_and_parts_of_words():
    for word in ("vgprs", "nvidia", "cpu_x86_64_v3.registers"):
        with pytest.raises(ValueError, match="unknown target"):
            select_targets(word, NAMES)


def test_resolve_target_needs_one_match():
    assert resolve_target(NAMES, "instructions") == 2
    assert resolve_target(NAMES, "cpu_host") == 1
    with pytest.raises(ValueError, match="ambiguous"):
        resolve_target(NAMES, "occupancy")


def test_clip_to_domain_leaves_unknown_targets_and_nan():
    values = np.array([[1.5, -2.0, np.nan, -3.0], [0.5, 7.0, -1.0, 4.0]])
    names = ["nvidia_sm80.occupancy", "cpu_host.latency_us", "amd_gfx942.vgprs", "y"]
    out = clip_to_domain(values, names)
    assert out is values
    np.testing.assert_array_equal(out, [[1.0, 0.0, np.nan, -3.0], [0.5, 7.0, 0.0, 4.0]])


def test_hardware_limits_clip_predictions_and_hold_for_every_label():
    names = [
        "nvidia_sm80.registers",
        "amd_gfx942.vgprs",
        "amd_gfx942.lds_bytes",
        "nvidia_sm80.shared_bytes",
        "nvidia_sm90.shared_bytes",
    ]
    out = clip_to_domain(np.array([[300.0, 700.0, 3.8e6, 1e6, 1e6]]), names)
    np.testing.assert_array_equal(out, [[255, 512, 65536, 163 * 1024, 227 * 1024]])
    # A limit is a fact of the hardware: no measured label exceeds it.
    from mlircost_classic.datasets import iter_dataset

    for kind in ("modules", "kernels", "variants"):
        for rec in iter_dataset(kind):
            for name, value in rec["targets"].items():
                if name in TARGETS:
                    assert value <= TARGETS[name].bounds[1], (kind, rec["id"], name)
