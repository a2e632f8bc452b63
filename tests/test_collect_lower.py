"""Tests of lowering to MLIR levels and of stripping / filling weight blobs."""

import re
import subprocess

import numpy as np
import pytest

from mlircost_classic.collect._families import FAMILIES, ProgramSpec, sample_specs
from mlircost_classic.collect._resources import fill_missing_resources, strip_resources

BLOB = re.compile(r'^\s*("[^"]*"|\S+): "0x([0-9A-F]*)"', re.MULTILINE)


def blobs(text: str) -> dict[str, bytes]:
    return {k: bytes.fromhex(v) for k, v in BLOB.findall(text)}


# ----------------------------------------------------------------------------
# strip_resources / fill_missing_resources (text only, no toolchain)

LINALG = """\
module {
  func.func @main(%arg0: tensor<4x3xf32>) -> tensor<4x3xf32> {
    %w = arith.constant dense_resource<torch_tensor_4_3_torch.float32> : tensor<4x3xf32>
    %e = arith.constant dense_resource<__elided__> : tensor<5x2xf16>
    %f = arith.constant dense_resource<__elided__> : tensor<7xi64>
    %b = arith.constant dense_resource<"quoted key"> : tensor<9xi1>
    %h = arith.constant dense_resource<half> : tensor<2x3xbf16>
    return %arg0 : tensor<4x3xf32>
  }
}
"""


def test_strip_removes_blobs_and_keeps_program():
    text = (
        LINALG
        + '\n{-#\n  dialect_resources: {\n    builtin: {\n      a: "0x0400"\n    }\n  }\n#-}\n'
    )
    stripped = strip_resources(text)
    assert "dialect_resources" not in stripped and "0x0400" not in stripped
    assert stripped.strip() == LINALG.strip()
    assert strip_resources(LINALG) == LINALG
    assert strip_resources(LINALG + "\n{-#\n\n#-}\n").strip() == LINALG.strip()


def test_strip_keeps_external_resources():
    text = (
        LINALG
        + '{-#\n  dialect_resources: {\n    builtin: {\n      a: "0x0400"\n    }\n  },\n'
        + '  external_resources: {\n    mlir_reproducer: {\n      pipeline: "x"\n    }\n  }\n#-}\n'
    )
    stripped = strip_resources(text)
    assert "0x0400" not in stripped
    assert 'pipeline: "x"' in stripped
    assert stripped.count("{") == stripped.count("}")


def test_fill_gives_right_sizes_and_distinct_data():
    filled = fill_missing_resources(LINALG)
    data = blobs(filled)
    assert "__elided__" not in filled
    # every __elided__ gets its own name: two constants of different types
    assert set(data) == {
        "torch_tensor_4_3_torch.float32",
        "elided_0",
        "elided_1",
        '"quoted key"',
        "half",
    }
    expected = {  # (alignment, element bytes, count)
        "torch_tensor_4_3_torch.float32": (4, 4, 12),
        "elided_0": (2, 2, 10),
        "elided_1": (8, 8, 7),
        '"quoted key"': (1, 1, 9),
        "half": (2, 2, 6),
    }
    for key, (align, size, count) in expected.items():
        blob = data[key]
        assert int.from_bytes(blob[:4], "little") == align
        assert len(blob) == 4 + size * count
        values = blob[4:]
        assert len(set(values[i : i + size] for i in range(0, len(values), size))) > 1
    floats = np.frombuffer(data["torch_tensor_4_3_torch.float32"][4:], np.float32)
    assert np.all(np.abs(floats) <= 1.0)
    ints = np.frombuffer(data["elided_1"][4:], np.int64)
    assert set(ints) <= {0, 1}


def test_fill_is_deterministic_and_seeded():
    assert fill_missing_resources(LINALG) == fill_missing_resources(LINALG)
    assert fill_missing_resources(LINALG, seed=1) != fill_missing_resources(LINALG)
    filled = fill_missing_resources(LINALG)
    assert fill_missing_resources(filled) == filled  # nothing left to fill


def test_fill_keeps_existing_blobs():
    text = (
        LINALG.replace("<half>", "<torch_tensor_4_3_torch.float32>").replace(
            "2x3xbf16", "4x3xf32"
        )
        + "\n{-#\n  dialect_resources: {\n    builtin: {\n"
        + '      torch_tensor_4_3_torch.float32: "0x04000000'
        + "00" * 48
        + '"\n    }\n  }\n#-}\n'
    )
    filled = fill_missing_resources(text)
    data = blobs(filled)
    assert data["torch_tensor_4_3_torch.float32"] == bytes([4, 0, 0, 0]) + bytes(48)
    assert {"elided_0", "elided_1", '"quoted key"'} <= set(data)
    assert filled.count("dialect_resources") == 1
    assert filled.count("torch_tensor_4_3_torch.float32:") == 1


def test_fill_memref_global_and_errors():
    text = (
        'memref.global "private" constant @c : memref<3x2xf32> = '
        "dense_resource<w> {alignment = 64 : i64}\n"
    )
    assert len(blobs(fill_missing_resources(text))["w"]) == 4 + 24
    with pytest.raises(ValueError, match="dynamic"):
        fill_missing_resources(
            "%c = arith.constant dense_resource<w> : tensor<?x2xf32>\n"
        )
    with pytest.raises(ValueError, match="two types"):
        fill_missing_resources(
            "%a = arith.constant dense_resource<w> : tensor<2xf32>\n"
            "%b = arith.constant dense_resource<w> : tensor<3xf32>\n"
        )
    with pytest.raises(ValueError, match="element type"):
        fill_missing_resources(
            "%a = arith.constant dense_resource<w> : tensor<2xcomplex<f32>>\n"
        )


# ----------------------------------------------------------------------------
# lowering (torch-mlir, iree-opt)


def small_spec(name: str) -> ProgramSpec:
    return sample_specs([name], 1, seed=0, small=True)[0]


@pytest.mark.collect
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_lowers_to_torch_and_linalg(name):
    pytest.importorskip("torch_mlir")
    from mlircost_classic.collect._lower import lower_spec

    lowered = lower_spec(small_spec(name), ["torch", "linalg"])
    assert lowered.errors == {}
    assert set(lowered.texts) == {"torch", "linalg"}
    assert "torch.aten" in lowered.texts["torch"]
    assert "linalg." in lowered.texts["linalg"] or "tensor." in lowered.texts["linalg"]
    for text in lowered.texts.values():
        assert "dialect_resources" not in text and '"0x' not in text
    assert set(lowered.seconds) == {"export", "torch", "linalg"}
    assert all(s >= 0 for s in lowered.seconds.values())


@pytest.mark.collect
def test_all_levels_describe_one_program():
    pytest.importorskip("torch_mlir")
    from mlircost_classic.collect._lower import LEVELS, lower_spec

    spec = ProgramSpec(
        "mlp",
        {
            "batch": 3,
            "widths": [40, 24, 5],
            "activation": "gelu",
            "bias": True,
            "dtype": "f32",
        },
    )
    lowered = lower_spec(spec)
    assert lowered.errors == {}
    assert set(lowered.texts) == set(LEVELS)
    assert "!torch.vtensor<[3,40],f32>" in lowered.texts["torch"]
    for level in ("linalg", "stablehlo", "tosa"):
        assert "tensor<3x40xf32>" in lowered.texts[level]
        assert "tensor<3x5xf32>" in lowered.texts[level]
    assert "memref<3x40xf32>" in lowered.texts["affine"]
    assert "affine.for" in lowered.texts["affine"]
    assert "linalg." not in lowered.texts["affine"]
    assert lower_spec(spec).texts == lowered.texts  # deterministic


@pytest.mark.collect
def test_one_import_gives_the_texts_of_one_export_and_import_per_level():
    """The program is imported once and each level lowers a clone: the texts
    are those torch-mlir's export_and_import makes level by level."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torch_mlir")
    from torch_mlir import fx
    from torch_mlir.extras.fx_decomp_util import get_decomposition_table

    from mlircost_classic.collect._lower import ELIDE_LIMIT, _quiet_torch, lower_module

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.norm = torch.nn.BatchNorm2d(8)
            self.fc = torch.nn.Linear(8 * 6 * 6, 10)

        def forward(self, x):
            y = torch.relu(self.norm(self.conv(x)))
            return torch.softmax(self.fc(y.flatten(1)), dim=-1)

    module, inputs = Block().eval(), (torch.randn(2, 3, 6, 6),)
    levels = ["torch", "linalg", "stablehlo", "tosa"]
    lowered = lower_module(module, inputs, levels)
    assert lowered.errors == {} and set(lowered.seconds) == {"export", *levels}
    with _quiet_torch():
        program = torch.export.export(module, inputs, strict=False)
        program = program.run_decompositions(get_decomposition_table())
    for level, output_type in zip(
        levels, ["torch", "linalg-on-tensors", "stablehlo", "tosa"], strict=True
    ):
        with _quiet_torch():
            alone = fx.export_and_import(
                program, output_type=output_type, decomposition_table={}
            )
        text = alone.operation.get_asm(
            large_elements_limit=ELIDE_LIMIT,
            large_resource_limit=ELIDE_LIMIT,
            print_generic_op_form=level == "tosa",
        )
        assert lowered.texts[level] == strip_resources(text), level


@pytest.mark.collect
def test_large_constants_are_elided():
    pytest.importorskip("torch_mlir")
    from mlircost_classic.collect._lower import lower_spec

    spec = ProgramSpec(
        "mlp",
        {
            "batch": 2,
            "widths": [64, 32],
            "activation": "none",
            "bias": False,
            "dtype": "f16",
        },
    )
    lowered = lower_spec(spec, ["linalg", "tosa"])
    # the weight is a resource reference without its blob
    assert re.search(
        r"dense_resource<\w[^>]*> : tensor<32x64xf16>", lowered.texts["linalg"]
    )
    for text in lowered.texts.values():
        assert "dense_resource<" in text and "dialect_resources" not in text


@pytest.mark.collect
def test_failures_are_recorded_not_raised():
    torch = pytest.importorskip("torch")
    pytest.importorskip("torch_mlir")
    from mlircost_classic.collect._lower import lower_module, lower_spec

    class Branchy(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow cannot be exported
                return x
            return -x

    lowered = lower_module(Branchy(), (torch.randn(3),), ["torch", "linalg", "affine"])
    assert lowered.texts == {}
    assert set(lowered.errors) == {"torch", "linalg", "affine"}
    assert all(m.startswith("export: ") for m in lowered.errors.values())
    assert "export" in lowered.seconds

    # torch-mlir cannot lower uneven adaptive pooling windows to linalg
    uneven = torch.nn.AdaptiveMaxPool2d(4)
    lowered = lower_module(
        uneven, (torch.randn(1, 1, 10, 7),), ["torch", "linalg", "affine"]
    )
    assert set(lowered.texts) == {"torch"}
    assert "tensor.cast" in lowered.errors["linalg"]
    assert lowered.errors["affine"].startswith("linalg: ")

    bad = ProgramSpec("mlp", {"batch": 2, "widths": [4], "dtype": "f64"})
    lowered = lower_spec(bad, ["torch"])
    assert lowered.errors["torch"].startswith("build: ")
    with pytest.raises(ValueError, match="unknown levels"):
        lower_module(Branchy(), (torch.randn(2),), ["llvm"])


@pytest.mark.collect
def test_affine_failure_is_recorded(monkeypatch):
    pytest.importorskip("torch_mlir")
    from mlircost_classic.collect import _lower

    monkeypatch.setattr(_lower, "_AFFINE_PASSES", ("--no-such-pass",))
    lowered = _lower.lower_spec(small_spec("mlp"), ["affine"])
    assert set(lowered.texts) == set()
    assert (
        "iree-opt" in lowered.errors["affine"]
        or "no-such-pass" in lowered.errors["affine"]
    )
    assert "affine" in lowered.seconds


@pytest.mark.collect
def test_filled_linalg_compiles_with_iree(tmp_path):
    pytest.importorskip("torch_mlir")
    binaries = pytest.importorskip("iree.compiler.tools.binaries")
    from mlircost_classic.collect._lower import lower_spec

    spec = ProgramSpec(
        "mha",
        {
            "batch": 1,
            "seq": 20,
            "heads": 2,
            "head_dim": 16,
            "cross": False,
            "kv_seq": 20,
            "impl": "explicit",
            "bias": True,
            "dtype": "f32",
        },
    )
    text = lower_spec(spec, ["linalg"]).texts["linalg"]
    filled = fill_missing_resources(text)
    data = blobs(filled)
    assert len(data) >= 4  # q, k, v, o weights (some biases may fold)
    weights = [b for b in data.values() if len(b) == 4 + 4 * 32 * 32]
    assert weights
    source = tmp_path / "m.mlir"
    source.write_text(filled)
    out = tmp_path / "m.vmfb"
    proc = subprocess.run(
        [
            binaries.find_tool("iree-compile"),
            "--iree-hal-target-device=local",
            "--iree-hal-local-target-device-backends=llvm-cpu",
            "--iree-llvmcpu-target-cpu=x86-64-v3",
            "-o",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.stat().st_size > 0


def test_fill_refuses_weights_over_its_budget():
    huge = (
        "%w = arith.constant dense_resource<__elided__> : tensor<100000x100000xf32>\n"
    )
    with pytest.raises(ValueError, match=r"40\.00 GB, over the 1\.07 GB budget"):
        fill_missing_resources(huge)  # refused before any data is made
    # LINALG's blobs take 12*4 + 10*2 + 7*8 + 9 + 6*2 = 145 bytes
    with pytest.raises(ValueError, match="budget"):
        fill_missing_resources(LINALG, max_bytes=144)
    assert fill_missing_resources(LINALG, max_bytes=145) == fill_missing_resources(
        LINALG
    )
