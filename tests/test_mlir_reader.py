"""Unit tests for the MLIR text reader (mlircost_classic.mlir)."""

import gc
import pickle

import pytest

from mlircost_classic.mlir import (
    MLIRSyntaxError,
    ParsedModule,
    ShapedType,
    parse,
    parse_type,
    read_source,
)


def names(text):
    return [op.name for op in parse(text).ops]


def one(text, name):
    (op,) = [op for op in parse(text).ops if op.name == name]
    return op


FUNC = """
func.func @add(%a: tensor<4x?xf32>, %b: tensor<4x?xf32>) -> tensor<4x?xf32> {
  %0 = arith.addf %a, %b : tensor<4x?xf32>
  return %0 : tensor<4x?xf32>
}
"""


# -- ops, names, order ---------------------------------------------------------


def test_custom_syntax_function():
    m = parse(FUNC)
    assert names(FUNC) == ["func.func", "arith.addf", "func.return"]
    f, add, ret = m.ops
    assert f.symbol == "add" and f.function is None and f.depth == 0
    assert f.num_regions == 1
    assert [t.shape for t in f.operand_types] == [(4, None), (4, None)]
    assert [t.shape for t in f.result_types] == [(4, None)]
    assert add.results == ("%0",) and add.operands == ("%a", "%b")
    assert add.dialect == "arith" and add.depth == 1 and add.function == "add"
    assert add.result_types[0] == ShapedType(
        "tensor", (4, None), "f32", raw="tensor<4x?xf32>"
    )
    assert [t.element for t in add.operand_types] == ["f32", "f32"]
    assert ret.operands == ("%0",) and ret.dialect == "func"
    assert add.line == 3 and ret.line == 4
    assert m.functions == ["add"]
    assert (m.num_regions, m.num_blocks, m.max_depth, m.num_splits) == (1, 1, 1, 1)


def test_generic_syntax_with_properties_and_regions():
    text = """
%0:2 = "test.two"(%x) <{axis = 1 : i64}> ({
^bb0(%a: f32):
  "test.yield"(%a) : (f32) -> ()
}) {note = "a } brace"} : (tensor<2xf32>) -> (i32, f32)
"""
    two, y = parse(text).ops
    assert two.name == "test.two" and two.generic and two.dialect == "test"
    assert two.results == ("%0#0", "%0#1")
    assert two.operands == ("%x",)
    assert two.attributes == {"axis": "1 : i64", "note": '"a } brace"'}
    assert two.num_regions == 1
    assert [t.element for t in two.result_types] == ["i32", "f32"]
    assert two.operand_types[0].shape == (2,)
    assert y.name == "test.yield" and y.depth == 1 and y.operands == ("%a",)


def test_multiple_results_forms():
    text = """
%a, %b = "test.pair"() : () -> (i1, i8)
%c:3 = "test.three"() : () -> (i1, i1, i1)
"""
    pair, three = parse(text).ops
    assert pair.results == ("%a", "%b")
    assert three.results == ("%c#0", "%c#1", "%c#2")


def test_ops_without_results_and_terminators():
    text = """
func.func @f(%m: memref<8xf32>, %v: f32) {
  affine.for %i = 0 to 8 step 2 {
    memref.store %v, %m[%i] : memref<8xf32>
  }
  scf.for %j = %c0 to %c8 step %c1 {
    scf.yield
  }
  func.return
}
"""
    m = parse(text)
    assert [op.name for op in m.ops] == [
        "func.func",
        "affine.for",
        "memref.store",
        "scf.for",
        "scf.yield",
        "func.return",
    ]
    affine_for = m.ops[1]
    assert affine_for.operands == ()  # %i is bound by the loop, not used
    assert "0 to 8 step 2" in affine_for.text
    store = m.ops[2]
    assert store.operands == ("%v", "%m", "%i") and store.depth == 2
    assert [t.raw for t in store.operand_types] == ["f32", "memref<8xf32>", "index"]
    assert m.ops[3].operands == ("%c0", "%c8", "%c1")
    assert m.max_depth == 2


def test_bare_names_resolved():
    text = """
module {
  func.func @f() {
    call @g() : () -> ()
    return
  }
}
pdl.pattern @p : benefit(1) {
  %root = operation "foo.op"
  rewrite %root with "rewriter"
}
"""
    assert names(text) == [
        "builtin.module",
        "func.func",
        "func.call",
        "func.return",
        "pdl.pattern",
        "pdl.operation",
        "pdl.rewrite",
    ]
    assert parse(text).ops[0].dialect == "builtin"


def test_continuation_lines_are_not_ops():
    text = """
func.func @mm(%a: tensor<4x8xf32>, %b: tensor<8x2xf32>, %c: tensor<4x2xf32>) -> tensor<4x2xf32> {
  %0 = linalg.matmul
      ins(%a, %b : tensor<4x8xf32>, tensor<8x2xf32>)
      outs(%c : tensor<4x2xf32>) -> tensor<4x2xf32>
  return %0 : tensor<4x2xf32>
}
"""
    assert names(text) == ["func.func", "linalg.matmul", "func.return"]
    mm = one(text, "linalg.matmul")
    assert mm.operands == ("%a", "%b", "%c")
    assert [t.shape for t in mm.operand_types] == [(4, 8), (8, 2), (4, 2)]
    assert [t.shape for t in mm.result_types] == [(4, 2)]


def test_linalg_generic_region_attributes_and_result():
    text = """
#map = affine_map<(d0) -> (d0)>
func.func @g(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = linalg.generic {indexing_maps = [#map, #map],
                       iterator_types = ["parallel"]}
      ins(%x : tensor<4xf32>) outs(%x : tensor<4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %1 = math.exp %in : f32
    linalg.yield %1 : f32
  } -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
"""
    m = parse(text)
    g = one(text, "linalg.generic")
    assert g.attributes == {
        "indexing_maps": "[#map, #map]",
        "iterator_types": '["parallel"]',
    }
    assert g.num_regions == 1 and g.result_types[0].shape == (4,)
    assert g.text.startswith("%0 = linalg.generic") and "math.exp" not in g.text
    assert one(text, "math.exp").depth == 2
    assert m.attribute_aliases == {"#map": "affine_map<(d0) -> (d0)>"}
    assert m.num_blocks == 2  # the function's entry block and ^bb0


def test_function_signature_types_and_attributes():
    text = """
module @m attributes {hal.device.targets = [#device]} {
  func.func private @decl(tensor<2xi8>, index) -> (f32, i1)
  func.func @f(%arg0: tensor<3xf32> {tf.arg}, %arg1: i32) -> f32 attributes {llvm.emit_c_interface} {
    func.return
  }
}
"""
    m = parse(text)
    module, decl, f, _ = m.ops
    assert module.symbol == "m" and module.attributes == {
        "hal.device.targets": "[#device]"
    }
    assert [t.raw for t in decl.operand_types] == ["tensor<2xi8>", "index"]
    assert [t.raw for t in decl.result_types] == ["f32", "i1"]
    assert f.operands == () and [t.raw for t in f.operand_types] == [
        "tensor<3xf32>",
        "i32",
    ]
    assert f.attributes == {"llvm.emit_c_interface": ""}
    assert m.functions == ["decl", "f"]


def test_type_aliases_resolved_and_recorded():
    text = """
!t = tensor<8x?xbf16>
!u = !t
func.func @f(%a: !u) -> !t {
  %0 = "test.id"(%a) : (!u) -> !t
  return %0 : !t
}
"""
    m = parse(text)
    assert m.type_aliases == {"!t": "tensor<8x?xbf16>", "!u": "!t"}
    op = one(text, "test.id")
    assert op.operand_types[0].shape == (8, None)
    assert op.result_types[0].element == "bf16"
    assert one(text, "func.func").operand_types[0].raw == "tensor<8x?xbf16>"


def test_splits_comments_and_locations():
    text = """// RUN: mlir-opt %s -split-input-file
// a comment with "quotes" and { braces
func.func @a() {
  return loc(#loc1)
}

// -----

#loc1 = loc("x.mlir":1:2)
func.func @b() {
  %c = arith.constant 1 : i32 loc("y.mlir":3:4)
  return
}
"""
    m = parse(text)
    assert m.num_splits == 2
    assert names(text) == [
        "func.func",
        "func.return",
        "func.func",
        "arith.constant",
        "func.return",
    ]
    assert m.attribute_aliases["#loc1"] == 'loc("x.mlir":1:2)'
    const = one(text, "arith.constant")
    assert const.result_types[0].raw == "i32"
    assert const.attributes["value"] == "1"


def test_runs_of_comment_lines_keep_lines_and_splits():
    # Whole-line comments are read a run at a time: line numbers, splits and the
    # ops' texts are as if each line were read on its own.
    text = """// one
  // two { ( "
func.func @a() {
  // inside, with %0 = arith.addf
  //
  %0 = arith.constant 1 : i32

  // after a blank line
  return
}
// -----
// split comment
func.func @b() {
  return
}
"""
    m = parse(text)
    assert m.num_splits == 2
    assert [(op.name, op.line) for op in m.ops] == [
        ("func.func", 3),
        ("arith.constant", 6),
        ("func.return", 9),
        ("func.func", 13),
        ("func.return", 14),
    ]
    assert m.ops[1].text == "%0 = arith.constant 1 : i32"
    assert m.ops[1].operands == ()


def test_reading_leaves_no_cyclic_garbage():
    # Featurizers pause the cyclic collector while they read a batch: what the
    # reader leaves behind must be freed by reference counting alone.
    texts = [FUNC.replace("%", f"%v{i}_") for i in range(3)]
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        modules = [parse(t) for t in texts]
        assert gc.collect() == 0
    finally:
        if enabled:
            gc.enable()
    assert all(m.ops for m in modules)


def test_repeated_attribute_dictionaries_are_not_shared():
    # Dictionaries are read once per distinct text; each op owns its entries.
    line = '%{i} = "t.op"() {{k = 1 : i64, s = "x"}} : () -> i32\n'
    m = parse("".join(line.format(i=i) for i in range(3)))
    assert [op.attributes for op in m.ops] == [{"k": "1 : i64", "s": '"x"'}] * 3
    m.ops[0].attributes["k"] = "changed"
    assert m.ops[1].attributes["k"] == "1 : i64"
    again = parse(line.format(i=0))
    assert again.ops[0].attributes == {"k": "1 : i64", "s": '"x"'}


def test_strings_with_braces_quotes_and_escapes():
    text = r"""
func.func @s() {
  "test.op"() {msg = "}{ ) ( \" // not a comment ]", other = "\\"} : () -> ()
  return
}
"""
    op = one(text, "test.op")
    assert op.attributes["msg"] == r'"}{ ) ( \" // not a comment ]"'
    assert op.attributes["other"] == r'"\\"'
    assert names(text) == ["func.func", "test.op", "func.return"]


def test_dense_and_resource_blobs():
    blob = "0x" + "ab" * 5000
    text = f"""
func.func @c() -> tensor<4xi32> {{
  %0 = arith.constant dense<[1, 2, 3, 4]> : tensor<4xi32>
  %1 = arith.constant dense_resource<blob1> : tensor<4xi32>
  return %0 : tensor<4xi32>
}}

{{-#
  dialect_resources: {{
    builtin: {{
      blob1: "{blob}",
      "fake.op"() : () -> ()
    }}
  }}
#-}}
"""
    m = parse(text)
    assert names(text) == [
        "func.func",
        "arith.constant",
        "arith.constant",
        "func.return",
    ]
    assert m.ops[1].attributes["value"] == "dense<[1, 2, 3, 4]>"
    assert m.ops[2].attributes["value"] == "dense_resource<blob1>"
    assert m.ops[1].result_types[0].shape == (4,)


def test_long_attribute_values_are_capped():
    hexs = "0x" + "12" * 10_000
    text = f'%0 = "test.c"() {{value = dense<"{hexs}"> : tensor<10000xi8>}} : () -> tensor<10000xi8>'
    op = parse(text).ops[0]
    value = op.attributes["value"]
    assert len(value) <= 513 and "…" in value
    assert value.startswith('dense<"0x1212') and value.endswith("tensor<10000xi8>")
    assert len(op.text) <= 2048


def test_torch_types_and_dialect_types():
    text = """
func.func @t(%arg0: !torch.vtensor<[8,64],f32>, %arg1: !torch.vtensor<[?,-1],si64>) -> !torch.vtensor<[8,64],f32> {
  %int1 = torch.constant.int 1
  %0 = torch.aten.add.Tensor %arg0, %arg0, %int1 : !torch.vtensor<[8,64],f32>, !torch.vtensor<[8,64],f32>, !torch.int -> !torch.vtensor<[8,64],f32>
  return %0 : !torch.vtensor<[8,64],f32>
}
"""
    f = one(text, "func.func")
    assert [t.kind for t in f.operand_types] == ["vtensor", "vtensor"]
    assert f.operand_types[0].shape == (8, 64)
    assert f.operand_types[1].shape == (None, None)
    add = one(text, "torch.aten.add.Tensor")
    assert [t.kind for t in add.operand_types] == ["vtensor", "vtensor", "other"]
    assert add.operand_types[2].raw == "!torch.int"
    assert add.result_types[0].numel == 512
    assert one(text, "torch.constant.int").attributes["value"] == "1"


@pytest.mark.parametrize(
    "text, kind, shape, element, scalable, encoding",
    [
        ("tensor<4x?xf32>", "tensor", (4, None), "f32", (), None),
        ("tensor<*xf32>", "tensor", None, "f32", (), None),
        ("tensor<f16>", "tensor", (), "f16", (), None),
        ("tensor<4xf32, #enc>", "tensor", (4,), "f32", (), "#enc"),
        (
            "memref<4x?xf32, strided<[?, 1], offset: ?>, 1>",
            "memref",
            (4, None),
            "f32",
            (),
            "strided<[?, 1], offset: ?>, 1",
        ),
        ("vector<2x[4]xbf16>", "vector", (2, 4), "bf16", (False, True), None),
        ("vector<[4]xf32>", "vector", (4,), "f32", (True,), None),
        ("!torch.vtensor<[8,64],f32>", "vtensor", (8, 64), "f32", (), None),
        ("!torch.vtensor", "vtensor", None, "", (), None),
        ("complex<f32>", "scalar", (), "complex<f32>", (), None),
        ("tensor<2xcomplex<f64>>", "tensor", (2,), "complex<f64>", (), None),
        ("index", "scalar", (), "index", (), None),
        ("i1", "scalar", (), "i1", (), None),
        ("si64", "scalar", (), "si64", (), None),
        ("f8E4M3FN", "scalar", (), "f8E4M3FN", (), None),
        ("!torch.int", "other", None, "", (), None),
        ("(i32, f32) -> i1", "other", None, "", (), None),
    ],
)
def test_parse_type(text, kind, shape, element, scalable, encoding):
    t = parse_type(text)
    assert (t.kind, t.shape, t.element, t.scalable, t.encoding) == (
        kind,
        shape,
        element,
        scalable,
        encoding,
    )
    assert t.raw == text


def test_type_forms_after_the_colon():
    text = """
%0 = arith.index_cast %i : index to i32
%1 = vector.extract %v[0] : f32 from vector<4xf32>
%2 = vector.insert %s, %v [0] : f32 into vector<4xf32>
%3 = memref.load %m[%i, %j] : memref<4x4xf16>
%4 = arith.cmpf olt, %x, %y : vector<[4]xf32>
%5 = tensor.empty(%d) : tensor<?xf32>
%6 = vector.transfer_read %m[%i, %j], %p : memref<4x4xf16>, vector<4xf16>
"""
    ops = parse(text).ops
    raw = [
        ([t.raw for t in op.operand_types], [t.raw for t in op.result_types])
        for op in ops
    ]
    assert raw[0] == (["index"], ["i32"])
    assert raw[1] == (["vector<4xf32>"], ["f32"])
    assert raw[2] == (["f32", "vector<4xf32>"], ["vector<4xf32>"])
    assert raw[3] == (["memref<4x4xf16>", "index", "index"], ["f16"])
    assert raw[4] == (["vector<[4]xf32>"] * 2, ["vector<[4]xi1>"])
    assert ops[4].attributes["predicate"] == "olt"
    assert raw[5] == ([], ["tensor<?xf32>"])
    assert raw[6] == (["memref<4x4xf16>"], ["vector<4xf16>"])


def test_region_arguments_and_bindings_are_not_operands():
    text = """
%r = stablehlo.reduce(%x init: %z) across dimensions = [0] : (tensor<4xf32>, tensor<f32>) -> tensor<f32>
  reducer(%a: tensor<f32>, %b: tensor<f32>) {
    %s = stablehlo.add %a, %b : tensor<f32>
    stablehlo.return %s : tensor<f32>
  }
%f = scf.forall (%i, %j) in (4, 4) shared_outs(%o = %t) -> (tensor<4xf32>) {
}
"""
    reduce, add, ret, forall = parse(text).ops
    assert reduce.operands == ("%x", "%z") and reduce.num_regions == 1
    assert add.depth == 1 and add.operands == ("%a", "%b")
    assert forall.operands == ("%t",)


def test_braced_custom_syntax_is_not_a_region():
    text = """
%0 = stream.async.splat %c : i32 -> !stream.resource<*>{%size}
vm.br_table %i {
  default: ^bb1(%a : i32),
  0: ^bb2(%b : i32)
}
"""
    splat, table = parse(text).ops
    assert splat.operands == ("%c", "%size") and splat.num_regions == 0
    assert table.num_regions == 0 and table.operands == ("%i", "%a", "%b")
    assert parse(text).num_regions == 0


def test_ops_on_one_line():
    text = (
        "func.func @f(%a: f32) -> f32 { %0 = arith.addf %a, %a : f32 "
        '%1 = "test.neg"(%0) : (f32) -> f32 func.return %1 : f32 }'
    )
    m = parse(text)
    assert [op.name for op in m.ops] == [
        "func.func",
        "arith.addf",
        "test.neg",
        "func.return",
    ]
    assert m.ops[1].operands == ("%a", "%a") and m.ops[3].operands == ("%1",)


def test_empty_and_comment_only_text_has_no_ops():
    for text in ("", "   \n", "// only a comment\n"):
        m = parse(text)
        assert isinstance(m, ParsedModule) and m.ops == [] and m.num_splits == 1


def test_ten_thousand_deep_nesting():
    n = 10_000
    text = "scf.execute_region {\n" * n + "scf.yield\n" + "}\n" * n
    m = parse(text)
    assert len(m.ops) == n + 1
    assert m.max_depth == n and m.num_regions == n
    assert m.ops[-1].name == "scf.yield" and m.ops[-1].depth == n


def test_ten_megabyte_single_line():
    body = " ".join(
        f"%{i} = arith.mulf %{i - 1 if i else 'a'}, %a : f32" for i in range(270_000)
    )
    text = "func.func @f(%a: f32) -> f32 { " + body + " return %269999 : f32 }"
    assert len(text) > 10_000_000 and "\n" not in text
    m = parse(text)
    assert len(m.ops) == 270_002
    assert m.ops[-1].name == "func.return" and m.ops[-1].operands == ("%269999",)
    assert m.ops[1234].results == ("%1233",)
    assert m.ops[1234].operands == ("%1232", "%a")


def test_parse_result_pickles():
    m = parse(FUNC)
    again = pickle.loads(pickle.dumps(m))
    assert [op.name for op in again.ops] == [op.name for op in m.ops]


# -- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, line, column, message",
    [
        ("func.func @f() {\n  return\n", 1, 16, "never closed"),
        ("func.func @f(%a: tensor<4xf32) {\n}\n", 1, 30, "does not match '<'"),
        ('"test.op"() {s = "abc} : () -> ()\n', 1, 18, "unterminated string"),
        ("module {\n}\n}\n", 3, 1, "no region is open"),
        ("x = [1, 2)\n", 1, 10, r"does not match '\['"),
        ("{-# dialect_resources: {\n", 1, 1, "resource block"),
        ("func.func @f() {\n\x00\x01\n}", 2, 1, "binary data"),
        ("func.func @f( {{{ this is not mlir }}}", 1, 13, "never closed"),
        ("func.func @a() {\n// -----\n}\n", 1, 16, "split"),
    ],
)
def test_structural_errors_name_line_and_column(text, line, column, message):
    with pytest.raises(MLIRSyntaxError, match=message) as info:
        parse(text)
    assert (info.value.line, info.value.column) == (line, column)
    assert isinstance(info.value, ValueError)
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value)


def test_unknown_dialects_and_custom_syntax_are_not_errors():
    text = """
%0 = mydialect.frobnicate %x wibble [1, 2] <weird> {k = #mydialect<"x">} : !mydialect.t
mydialect.sink %0 : !mydialect.t
"""
    assert names(text) == ["mydialect.frobnicate", "mydialect.sink"]


def test_parse_rejects_non_text():
    with pytest.raises(TypeError, match="str"):
        parse(b"func.func @f()")
    with pytest.raises(TypeError, match="NoneType"):
        parse(None)


# -- read_source -------------------------------------------------------------------


def test_read_source_content():
    assert read_source(FUNC) == FUNC
    assert read_source(FUNC.encode()) == FUNC
    with pytest.raises(MLIRSyntaxError, match="not valid utf-8"):
        read_source(b"func \xff\xfe")
    with pytest.raises(MLIRSyntaxError, match="NUL"):
        read_source(b"func\x00")
    with pytest.raises(TypeError, match="None"):
        read_source(None)
    with pytest.raises(TypeError, match="int"):
        read_source(3)
    with pytest.raises(ValueError, match="empty MLIR text"):
        read_source("  \n\t")
    assert read_source("", allow_empty=True) == ""
    with pytest.raises(ValueError, match="input must be one of"):
        read_source(FUNC, input="url")


def test_read_source_files(tmp_path):
    good = tmp_path / "good.mlir"
    good.write_text(FUNC)
    assert read_source(good, input="filename") == FUNC
    assert read_source(str(good), input="filename") == FUNC
    with open(good, "rb") as fh:
        assert read_source(fh, input="file") == FUNC
    with pytest.raises(FileNotFoundError, match="missing.mlir"):
        read_source(tmp_path / "missing.mlir", input="filename")
    with pytest.raises(IsADirectoryError, match="directory"):
        read_source(tmp_path, input="filename")
    junk = tmp_path / "junk.mlir"
    junk.write_bytes(bytes(range(256)))
    with pytest.raises(MLIRSyntaxError, match="binary data"):
        read_source(junk, input="filename")
    empty = tmp_path / "empty.mlir"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty MLIR file"):
        read_source(empty, input="filename")
    with pytest.raises(TypeError, match="read"):
        read_source("text", input="file")
