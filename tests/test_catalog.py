"""The op catalog: shipped TOML files, lookup rules, validation, user extensions."""

import importlib.resources
import pickle

import pytest

from mlircost_classic.featurize import (
    BYTE_RULES,
    FAMILIES,
    FLOP_RULES,
    CatalogError,
    ShapeFeatures,
    load_catalog,
)
from mlircost_classic.mlir._ir import Op, ParsedModule, ShapedType

REQUIRED = {
    "linalg", "tosa", "stablehlo", "torch", "arith", "math", "tensor",
    "memref", "affine", "scf", "vector", "func",
}  # fmt: skip


def _shipped():
    root = importlib.resources.files("mlircost_classic.catalog")
    return sorted(p for p in root.iterdir() if p.name.endswith(".toml"))


def test_package_data_holds_one_file_per_dialect():
    names = {p.name.removesuffix(".toml") for p in _shipped()}
    assert REQUIRED <= names


@pytest.mark.parametrize("path", _shipped(), ids=lambda p: p.name)
def test_every_shipped_file_loads_with_valid_rules(path, tmp_path):
    (tmp_path / path.name).write_text(path.read_text())
    catalog = load_catalog(tmp_path, builtin=False)
    (dialect,) = catalog.dialects.values()
    assert dialect.name == path.name.removesuffix(".toml")
    assert dialect.default_family in FAMILIES
    for spec in dialect.ops.values():
        assert spec.family in FAMILIES
        assert spec.flops.name in FLOP_RULES
        assert spec.bytes.name in BYTE_RULES
        assert set(spec.flops.params) <= set(FLOP_RULES[spec.flops.name])


def test_lookup_families():
    catalog = load_catalog()
    assert catalog.family("linalg.matmul") == "matmul"
    assert catalog.family("linalg.batch_matmul") == "batch_matmul"
    assert catalog.family("linalg.conv_2d_nchw_fchw") == "conv"
    assert catalog.family("torch.aten.mm") == "matmul"
    assert catalog.family("torch.aten.convolution") == "conv"
    assert catalog.family("stablehlo.dot_general") == "matmul"
    assert catalog.family("tosa.conv2d") == "conv"
    assert catalog.family("scf.for") == "control"
    assert catalog.family("arith.constant") == "constant"


def test_overloads_fall_back_to_base_name():
    catalog = load_catalog()
    assert catalog.lookup("torch.aten.add.Tensor") == catalog.lookup("torch.aten.add")
    assert catalog.family("torch.aten.add.Tensor") == "elementwise"


def test_unknown_dialect_and_op_fall_back_without_error():
    catalog = load_catalog()
    assert catalog.family("mydialect.frobnicate") == "unknown"
    assert catalog.family("nodot") == "unknown"
    # Unlisted op of a known dialect: the file's default family.
    assert catalog.family("arith.some_future_op") == "elementwise"


def test_catalog_pickles():
    catalog = load_catalog()
    again = pickle.loads(pickle.dumps(catalog))
    assert again.family("linalg.matmul") == "matmul"
    assert sorted(again.dialects) == sorted(catalog.dialects)


def _write(tmp_path, text, name="x.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ('dialect = "d"\n[ops]\na = {family = "conv", flops = {rule = "magic"}}',
         "unknown flops rule 'magic'"),
        ('dialect = "d"\n[ops]\na = {family = "conv", bytes = {rule = "all"}}',
         "unknown bytes rule 'all'"),
        ('dialect = "d"\n[ops]\na = {family = "convolutions"}', "unknown family"),
        ('dialect = "d"\n[ops]\na = {family = "conv", flops = {rule = "conv"}}',
         "needs 'filter_out_dims'"),
        ('dialect = "d"\n[ops]\na = {family = "matmul", flops = {rule = "matmul", k = 1}}',
         "has no parameter 'k'"),
        ('dialect = "d"\n[ops]\na = {family = "matmul", flops = {rule = "matmul", k_dims = 1}}',
         "must be of type list"),
        ('dialect = "d"\n[ops]\na = {flops = {rule = "none"}}', "missing 'family'"),
        ('dialect = "d"\n[ops]\na = {family = "conv", cost = 1}', "unknown keys"),
        ('dialekt = "d"', "unknown top-level keys"),
        ("[ops", "not valid TOML"),
        ('dialect = "a.b"', "'dialect' must be a dialect name"),
    ],
)  # fmt: skip
def test_invalid_files_are_rejected_naming_the_file(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(CatalogError, match=message) as info:
        load_catalog(path)
    assert str(path) in str(info.value)


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nope")


def test_user_file_adds_a_dialect_and_overrides_entries(tmp_path):
    _write(
        tmp_path,
        'dialect = "mine"\ndefault_family = "other"\n[ops]\n'
        'gemm = {family = "matmul", flops = {rule = "matmul"}}\n',
        "mine.toml",
    )
    _write(
        tmp_path,
        'dialect = "linalg"\n[ops]\nfill = {family = "constant"}\n',
        "linalg.toml",
    )
    catalog = load_catalog(tmp_path)
    assert catalog.family("mine.gemm") == "matmul"
    assert catalog.family("mine.other_op") == "other"
    assert catalog.family("linalg.fill") == "constant"
    assert catalog.family("linalg.matmul") == "matmul"  # shipped entries kept
    assert load_catalog().family("mine.gemm") == "unknown"


def test_adding_a_file_changes_shape_features_families(tmp_path):
    f32 = ShapedType("tensor", (8, 8), "f32")
    op = Op("mine.gemm", "mine", results=("%0",), operands=("%a", "%b"),
            operand_types=(f32, f32), result_types=(f32,))  # fmt: skip
    module = ParsedModule(ops=[op])
    names = list(ShapeFeatures(log_scale=False).fit([module]).get_feature_names_out())
    before = ShapeFeatures(log_scale=False).fit_transform([module])[0]
    assert before[names.index("ops unknown")] == 1
    assert before[names.index("matmul FLOPs")] == 0
    _write(
        tmp_path,
        'dialect = "mine"\n[ops]\ngemm = {family = "matmul", flops = {rule = "matmul"}}\n',
        "mine.toml",
    )
    after = ShapeFeatures(catalog=tmp_path, log_scale=False).fit_transform([module])[0]
    assert after[names.index("ops unknown")] == 0
    assert after[names.index("ops matmul")] == 1
    assert after[names.index("matmul FLOPs")] == 2 * 8 * 8 * 8
