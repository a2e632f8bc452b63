"""Property-based tests of the MLIR reader: generated programs and mangled text."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlircost_classic.mlir import MLIRSyntaxError, parse, parse_type

SETTINGS = settings(
    max_examples=150,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
ELEMENT = st.sampled_from(
    ["f32", "f16", "bf16", "i1", "i8", "i64", "index", "f8E4M3FN", "complex<f32>"]
)
DIM = st.one_of(st.integers(0, 4096).map(str), st.just("?"))


@st.composite
def types(draw):
    """(type text, expected kind, expected shape, expected element)."""
    element = draw(ELEMENT)
    kind = draw(st.sampled_from(["scalar", "tensor", "memref", "vector", "vtensor"]))
    dims = draw(st.lists(DIM, max_size=4))
    shape = tuple(None if d == "?" else int(d) for d in dims)
    if kind == "scalar":
        return element, "scalar", (), element
    if kind == "vtensor":
        text = "!torch.vtensor<[" + ",".join(dims) + "]," + element + ">"
        return text, "vtensor", shape, element
    if kind == "vector":
        dims = [d if d != "?" else "4" for d in dims]
        shape = tuple(int(d) for d in dims)
    prefix = "".join(d + "x" for d in dims)
    return f"{kind}<{prefix}{element}>", kind, shape, element


STRING = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"))
    | st.sampled_from('{}[]()<>"\\'),
    max_size=12,
).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
ATTR_VALUE = st.one_of(
    st.integers(-100, 100).map(lambda i: f"{i} : i64"),
    STRING,
    st.lists(st.integers(0, 9), max_size=4).map(
        lambda v: f"dense<{v}> : tensor<{len(v)}xi32>"
    ),
    st.just("unit"),
    st.just("#map"),
)
COMMENT = st.sampled_from(["", "  // comment { with ( brackets", '  // "quoted'])


@st.composite
def programs(draw, depth=0):
    """Generated MLIR lines and the expected (name, depth) of each op."""
    lines, expected = [], []
    defined = ["%arg0"]
    for i in range(draw(st.integers(1, 4))):
        dialect, op = draw(IDENT), draw(IDENT)
        name = f"{dialect}.{op}"
        nres = draw(st.integers(0, 2))
        results = [f"%v{depth}_{i}_{r}" for r in range(nres)]
        operands = draw(st.lists(st.sampled_from(defined), max_size=3))
        ty = draw(types())[0]
        attrs = draw(st.dictionaries(IDENT, ATTR_VALUE, max_size=2))
        attr_text = (
            " {"
            + ", ".join(k if v == "unit" else f"{k} = {v}" for k, v in attrs.items())
            + "}"
            if attrs
            else ""
        )
        lhs = ", ".join(results) + " = " if results else ""
        generic = draw(st.booleans())
        nested = depth < 3 and draw(st.booleans())
        inner_lines, inner_expected = ([], [])
        if nested:
            inner_lines, inner_expected = draw(programs(depth=depth + 1))
        fn_type = f"({', '.join([ty] * len(operands))}) -> ({', '.join([ty] * nres)})"
        expected.append((name, depth))
        if generic:
            region = " ({\n" + "\n".join(inner_lines) + "\n})" if nested else ""
            lines.append(
                f'{lhs}"{name}"({", ".join(operands)}){region}{attr_text} : {fn_type}'
                + draw(COMMENT)
            )
        else:
            head = f"{lhs}{name} {', '.join(operands)}{attr_text} : {fn_type}"
            if nested:
                lines.append(head + " {" + draw(COMMENT))
                lines.extend(inner_lines)
                lines.append("}")
            else:
                lines.append(head + draw(COMMENT))
        expected.extend(inner_expected)
        defined.extend(results)
    return lines, expected


@SETTINGS
@given(programs(), st.booleans())
def test_generated_programs_round_trip_op_names_and_depths(program, split):
    lines, expected = program
    text = "#map = affine_map<(d0) -> (d0)>\n" + "\n".join(lines) + "\n"
    if split:
        text = text + "// -----\n" + text
        expected = expected + expected
    module = parse(text)
    assert [(op.name, op.depth) for op in module.ops] == expected
    assert module.num_splits == (2 if split else 1)
    assert module.attribute_aliases == {"#map": "affine_map<(d0) -> (d0)>"}


@SETTINGS
@given(types())
def test_generated_types_parse(t):
    text, kind, shape, element = t
    parsed = parse_type(text)
    assert (parsed.kind, parsed.shape, parsed.element) == (kind, shape, element)
    op = parse(f"%0 = test.op %x : {text}").ops[0]
    assert op.result_types[0].shape == shape


@SETTINGS
@given(programs(), st.data())
def test_cut_or_damaged_programs_never_crash(program, data):
    text = "\n".join(program[0])
    cut = data.draw(st.integers(0, len(text)))
    damaged = data.draw(st.sampled_from(["truncate", "delete", "insert"]))
    if damaged == "truncate":
        text = text[:cut]
    elif damaged == "delete":
        text = text[:cut] + text[cut + 1 :]
    else:
        text = (
            text[:cut]
            + data.draw(st.sampled_from(list('{}()[]<>"%^@#!:=,')))
            + text[cut:]
        )
    try:
        module = parse(text)
    except MLIRSyntaxError as exc:
        assert exc.line >= 1 and exc.column >= 1
    else:
        assert all(op.name for op in module.ops)


@SETTINGS
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text):
    try:
        parse(text)
    except MLIRSyntaxError as exc:
        assert exc.line >= 1 and exc.column >= 1
