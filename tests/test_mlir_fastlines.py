"""The reader's line-at-a-time paths give exactly what its token scan gives.

Most machine-printed lines are read by one match of a whole-line branch of the
master expression (an op line, a region end, a block label, a run of comment
lines), and a ``<...>`` group with strings or nested groups in it (a target
or layout attribute) by one token. Each must stand for exactly the tokens the
general scan would read there, so the records with those branches switched
off (the scan reads every line token by token) must be identical: on the shared
corpus and on a sample of the bundled modules and kernels. Op lines read
before with other SSA names are taken from a cache, and whole lines read before
(an op complete in its line, a region end, a block label) are read again from
templates without the master expression; records read through them must be
those of a cold read.
"""

import re
from pathlib import Path

import pytest

from mlircost_classic import load_dataset
from mlircost_classic.datasets._schema import LEVELS
from mlircost_classic.mlir import _reader, parse

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "mlir-corpus"
FILES = sorted(CORPUS.glob("*/*.mlir")) if CORPUS.is_dir() else []

# The same expression, same groups, with the whole-line branches and the
# one-token reading of '<...>' groups with strings or groups inside never
# matching.
_INERT_BRANCH = "<(" + _reader._INERT_ANGLE[1:] + ")"
_TOKENS_ONLY = re.compile(
    "|".join(
        ["(?!)" + _reader._FAST_BRANCH]
        + [
            "(?!)" + b if kind == _reader._COMMENT_LINES or b == _INERT_BRANCH else b
            for b, kind in _reader._BRANCHES
        ]
    )
)


def _record(text: str) -> str:
    try:
        return repr(parse(text))
    except Exception as exc:  # noqa: BLE001 - the error is part of the record
        return f"error {exc!r}"


def _assert_same_as_tokens(texts, monkeypatch):
    fast = [_record(t) for t in texts]
    with monkeypatch.context() as m:
        m.setattr(_reader, "_MASTER", _TOKENS_ONLY)
        m.setattr(_reader, "_TEMPLATES", _NoCache())
        slow = [_record(t) for t in texts]
    differ = [i for i, (a, b) in enumerate(zip(fast, slow, strict=True)) if a != b]
    assert not differ, f"{len(differ)} of {len(texts)} differ, first {differ[:5]}"


class _NoCache(dict):
    """A line cache that never keeps anything: every line is read cold."""

    def __setitem__(self, key, value):
        pass


class _CountingCache(dict):
    def get(self, key, default=None):
        value = super().get(key, default)
        self.hits = getattr(self, "hits", 0) + (value is not None)
        return value


def _assert_same_through_line_cache(texts, monkeypatch, hits=True):
    with monkeypatch.context() as m:
        m.setattr(_reader, "_LINES", _NoCache())
        m.setattr(_reader, "_TEMPLATES", _NoCache())
        cold = [_record(t) for t in texts]
    with monkeypatch.context() as m:
        cache, templates = _CountingCache(), _CountingCache()
        m.setattr(_reader, "_LINES", cache)
        m.setattr(_reader, "_TEMPLATES", templates)
        first = [_record(t) for t in texts]  # fills the caches as it goes
        cache.hits = templates.hits = 0
        warm = [_record(t) for t in texts]
    if hits:  # lines came from the caches (not for generic syntax, read by tokens)
        assert templates.hits > len(texts)
    for records in (first, warm):
        differ = [
            i for i, (a, b) in enumerate(zip(cold, records, strict=True)) if a != b
        ]
        assert not differ, f"{len(differ)} of {len(texts)} differ, first {differ[:5]}"


def _one_line_match(text: str) -> int:
    """Where the op-line match of the master expression at ``text``'s start ends."""
    m = _reader._MASTER.match(text)
    assert _reader._KIND[m.lastindex] == _reader._OP
    return m.end()


def test_token_scan_is_really_slower_path(monkeypatch):
    # The switch works: without the line branches, lines become many tokens.
    text = "%0 = arith.addf %a, %b : f32\n%1 = arith.mulf %0, %0 : f32\n"
    assert len(_reader._MASTER.findall(text)) < len(_TOKENS_ONLY.findall(text))


@pytest.mark.skipif(not FILES, reason=f"MLIR corpus not found at {CORPUS}")
def test_corpus_reads_the_same_line_by_line(monkeypatch):
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in FILES]
    _assert_same_as_tokens(texts, monkeypatch)
    _assert_same_through_line_cache(texts, monkeypatch)


@pytest.mark.parametrize(
    "kind, level", [("kernels", None)] + [("modules", level) for level in LEVELS]
)
def test_bundled_texts_read_the_same_line_by_line(kind, level, monkeypatch):
    data = load_dataset(kind, **({} if level is None else {"level": level})).data
    step = max(1, len(data) // 150)
    _assert_same_as_tokens(list(data)[::step], monkeypatch)
    # generic syntax (the TOSA level) is read by tokens, never by the cache
    _assert_same_through_line_cache(
        list(data)[::step], monkeypatch, hits=level != "tosa"
    )


_HEADER = """hal.executable public @d {
  hal.executable.variant public @v target(<"llvm-cpu", "elf", {cpu = "x86-64-v3", \
r = #iree_cpu.r<>, size = 32768 : i64}>) {
    hal.executable.export public @e ordinal(0) layout(#hal.pipeline.layout<bindings \
= [#hal.pipeline.binding<storage_buffer, "ReadOnly|Indirect">, \
#hal.pipeline.binding<storage_buffer, Indirect>], flags = Indirect>) \
count(%arg0: !hal.device) -> (index, index, index) {
      %x, %y, %z = iree_tensor_ext.dispatch.workgroup_count_from_slice()
      hal.return %x, %y, %z : index, index, index
    }
  }
}
"""


@pytest.mark.parametrize(
    "text",
    [
        _HEADER,
        '%0 = "t.op"(%a) <{k = "s", m = #a<"x">}> : (i32) -> i32\n',
        'func.func @f() attributes {t = #a<"b", [1, (2)], {c = 3}>} {\n  return\n}\n',
        't.op {a = #x<"s", <b>=c>, d = #y<e => "f">} : () -> ()\n',
        't.op {a = #x<"s", <b> // c>}\n',
        't.op {a = #x<"s", [b>}\n',  # mismatched: an error either way
        't.op {a = #x<"s", %v>} : () -> ()\n',
    ],
)
def test_groups_with_strings_inside_read_as_one_token(text, monkeypatch):
    _assert_same_as_tokens([text], monkeypatch)


def test_target_and_layout_groups_are_one_token():
    inert = re.compile(_INERT_BRANCH)
    found = [m.group() for m in inert.finditer(_HEADER)]
    assert found[0].startswith('<"llvm-cpu"') and found[0].endswith("i64}>")
    assert found[1].startswith("<bindings") and found[1].endswith("Indirect>")
    assert len(_reader._MASTER.findall(_HEADER)) < len(_TOKENS_ONLY.findall(_HEADER))


def test_line_cache_keeps_each_ops_own_names_and_attributes():
    template = (
        "\n%{r} = arith.addi %{a}, %{b} {{tag = {t}}} : i32"
        "\n%{s}:2 = test.pair %{r} : i32, i32"
    )
    first = parse(template.format(r="x", a="a", b="b", t=1, s="p")).ops
    second = parse(template.format(r="y0", a="c", b="a-1", t=2, s="q")).ops
    third = parse(template.format(r="x", a="a", b="b", t=1, s="p")).ops
    assert second[0].results == ("%y0",)
    assert second[0].operands == ("%c", "%a-1")
    assert second[0].attributes == {"tag": "2"}
    assert second[1].results == ("%q#0", "%q#1")
    assert second[1].operands == ("%y0",)
    assert repr(third) == repr(first)
    assert third[0].attributes is not first[0].attributes


def test_strings_and_equals_inside_brackets_stay_on_the_fast_line():
    line = (
        "\n%0 = hal.interface.binding.subspan layout(<bindings = [#hal.pipeline."
        'binding<storage_buffer, "ReadOnly|Indirect">], flags = Indirect>) '
        'binding(0) offset(%c0) flags("ReadOnly|Indirect") : '
        "!iree_tensor_ext.dispatch.tensor<readonly:tensor<64x4xf32>>"
    )
    assert _one_line_match(line) == len(line)
    (op,) = parse(line).ops
    assert op.operands == ("%c0",)
    assert op.result_types[0].raw == (
        "!iree_tensor_ext.dispatch.tensor<readonly:tensor<64x4xf32>>"
    )
    # a '%' inside a string is no operand (such lines are read token by token)
    (op,) = parse('\n%1 = t.op(%0) flags("50% of %2") : (i32) -> i32').ops
    assert op.operands == ("%0",)


def test_dictionaries_with_inline_affine_maps_stay_on_the_fast_line():
    text = (
        "\n%1 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, "
        'affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} '
        "ins(%a : tensor<4xf32>) outs(%b : tensor<4xf32>) {\n"
    )
    # the op line is one match, up to the brace of its region
    assert text[_one_line_match(text) :] == "{\n"
    (op,) = parse(text + "^bb0(%x: f32, %y: f32):\n  linalg.yield %x : f32\n}\n").ops[
        :1
    ]
    assert op.attributes["indexing_maps"] == (
        "[affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>]"
    )
    assert op.operands == ("%a", "%b")


def _cold_and_warm(text: str, warm_up: str, monkeypatch) -> tuple[str, str]:
    """Records of ``text`` read cold and after ``warm_up`` filled the caches."""
    with monkeypatch.context() as m:
        m.setattr(_reader, "_LINES", _NoCache())
        m.setattr(_reader, "_TEMPLATES", _NoCache())
        cold = _record(text)
    with monkeypatch.context() as m:
        templates = _CountingCache()
        m.setattr(_reader, "_LINES", {})
        m.setattr(_reader, "_TEMPLATES", templates)
        parse(warm_up)
        templates.hits = 0
        warm = _record(text)
        assert templates.hits > 0
    return cold, warm


def test_template_line_read_on_by_later_tokens_is_read_as_before(monkeypatch):
    # The same op line, once complete in itself and once continued on the next
    # line ('attributes {...}') or followed by comments and a block label.
    line = "\n  %{r} = arith.addi %{a}, %{b} : i32"
    warm_up = "func.func @f(%a: i32, %b: i32) {" + line.format(r=0, a="a", b="b")
    warm_up += "\n  ^bb1(%z: i32):" + line.format(r=1, a=0, b=0) + "\n}"
    continued = (
        "func.func @g(%x: i32) {"
        + line.format(r="s", a="x", b="x")
        + "\n    attributes {tag = 1}"
        + line.format(r="t", a="s", b="x")
        + "\n  // a comment\n\n  ^bb1(%w: i32):"
        + line.format(r="u", a="w", b="t")
        + "\n}"
    )
    cold, warm = _cold_and_warm(continued, warm_up, monkeypatch)
    assert warm == cold
    ops = parse(continued).ops
    assert [op.attributes for op in ops[1:]] == [{"tag": "1"}, {}, {}]
    assert ops[1].text == "%s = arith.addi %x, %x : i32\n    attributes {tag = 1}"
    assert [op.operands for op in ops[1:]] == [("%x", "%x"), ("%s", "%x"), ("%w", "%t")]


def test_template_line_with_longer_names_is_capped_as_before(monkeypatch):
    line = "\n  %{r} = arith.addi %a, %b : i32"
    warm_up = "func.func @f(%a: i32, %b: i32) {" + line.format(r=0) + "\n}"
    text = "func.func @f(%a: i32, %b: i32) {" + line.format(r="x" * 2100) + "\n}"
    with monkeypatch.context() as m:
        m.setattr(_reader, "_TEMPLATES", {})
        parse(warm_up)
        assert _reader._TEMPLATES
        op = parse(text).ops[1]
    assert len(op.text) == _reader._TEXT_CAP
    assert op.results == ("%" + "x" * 2100,)


def test_builder_template_places_types_and_region_with_other_names(monkeypatch):
    # An op line opening a region, read again with names of other lengths: its
    # name, groups, trailing types and region are placed by the new names.
    generic = (
        "\n  %{r} = linalg.generic {{indexing_maps = [#map, #map], iterator_types"
        ' = ["parallel"]}} ins(%{a} : tensor<4xf32>) outs(%{b} : tensor<4xf32>) {{'
        "\n  ^bb0(%{x}: f32, %{y}: f32):\n    linalg.yield %{x} : f32\n  }} -> tensor<4xf32>"
    )
    head = "#map = affine_map<(d0) -> (d0)>\nfunc.func @f(%a: tensor<4xf32>) {"
    warm_up = head + generic.format(r=0, a="a", b="a", x="p", y="q") + "\n}"
    text = head + generic.format(r="long_name", a="a", b="0", x="in_0", y="o") + "\n}"
    cold, warm = _cold_and_warm(text, warm_up, monkeypatch)
    assert warm == cold
    op = parse(text).ops[1]
    assert (op.results, op.operands) == (("%long_name",), ("%a", "%0"))
    assert op.result_types[0].raw == "tensor<4xf32>"
    assert op.attributes["iterator_types"] == '["parallel"]'
    assert op.text.endswith("outs(%0 : tensor<4xf32>) {…} -> tensor<4xf32>")


def test_builder_template_finds_the_inline_predicate_after_longer_results(monkeypatch):
    # A compare continued on the next line gets a builder template; its
    # predicate is read after the op name, wherever the new names put it.
    line = "\n  %{r} = arith.cmpi slt, %a, %b : i32\n    attributes {{tag = 1}}"
    head = "func.func @f(%a: i32, %b: i32) {"
    warm_up = head + line.format(r=0) + "\n  return\n}"
    text = head + line.format(r="a_much_longer_name") + "\n  return\n}"
    cold, warm = _cold_and_warm(text, warm_up, monkeypatch)
    assert warm == cold
    op = parse(text).ops[1]
    assert op.attributes == {"tag": "1", "predicate": "slt"}
