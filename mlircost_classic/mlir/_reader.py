"""A fast, lenient reader for MLIR text.

:func:`parse` turns MLIR text (custom or generic syntax, any dialect, ``// -----``
split files) into a :class:`~mlircost_classic.mlir.ParsedModule`: op records in
program order with their results, operands, types, attributes and nesting.
It does not validate: unknown dialects and custom syntax it does not understand
are read as well as the text allows, and only structural breakage (unbalanced
brackets, an unterminated string or resource block, binary data) is an error.

How it reads
------------
One compiled regular expression, whose every branch starts with a literal
character so that the engine skips plain text in C, finds the few tokens that
carry structure (a newline with the head of the next line, comments, strings,
SSA names, ``%results =``, block labels, symbols, brackets, ``:`` and ``->``
with the simple types after them); one handler per kind of token (a
``_Reader`` method) does the rest with a stack of open brackets and a chain of
open-region records (the op owning each region, its enclosing function, its
default dialect), so the work is linear in the text and nothing recurses. Most machine-printed lines (an op with its operands, attribute
dictionary, typed ``ins``/``outs`` groups and trailing types; a ``} -> T``
region end; a block label) are read by one match of a first branch that
takes the whole line, and a run of whole-line comments by one match of the
next; lines they do not recognise go through the tokens. A ``<...>`` group
with nothing inside that changes the scan's state (strings and balanced
groups, as in target and layout attributes) is one token. Such an op line read
before with other SSA names (machine-printed modules repeat a few lines with
new names over and over) is not read again: a cache keyed by the line with its
names cut out gives its typed groups and attribute dictionaries and, when the
op is that line alone, its types and attributes.
Whole physical lines read before are templates (keyed the same way, with
their indentation): at a newline the scan first looks the next line up, and a
known op line, region end or block label is read from its template without
the master expression; an op complete in its line is made whole at once, with
no builder, and becomes one only if a later token adds to it.

An op starts at a statement start:

* ``%r = name`` / ``%a, %b = name`` / ``%r:2 = name`` (name bare or quoted);
* a dotted word (``func.return``, ``memref.store``) that begins a line, or
  begins a region on the brace's line, or follows the op's complete trailing
  types on the same line (``... : f32 func.return``; also ``return``);
* a bare word that begins a line when it is one of ``module``, ``func``,
  ``return``, ``call``, ``call_indirect``, ``constant``, or when the enclosing
  op sets a default dialect (``pdl.pattern`` -> ``operation``, ``rewrite``);
  other bare words that begin a line (``ins(``, ``outs(``) continue the op;
* ``"dialect.op"(`` (generic form) at a line start or after a complete op.

A ``{`` that follows an op is a region when what comes next looks like ops
(``%``, ``^bb``, ``"op"(``, a word not followed by ``=``/``,``/``}``), and an
attribute dictionary otherwise; after ``attributes`` it is always a dictionary.
Text inside ``{-# ... #-}`` resource blocks is skipped with one ``str.find``.
"""

from __future__ import annotations

import os
import re
from itertools import chain

from ._ir import MLIRSyntaxError, Op, ParsedModule
from ._types import parse_type, signature_types, split_signature, type_list

__all__ = ["parse", "read_source"]

_TEXT_CAP = 2048
_VALUE_CAP = 512
_MAX_EXPANDED_RESULTS = 4096

_STR = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'
_ID = r"[\w$.\-]+"
_RESULT_LIST = (
    r"%" + _ID + r"(?::\d+)?(?:[ \t]*,[ \t]*%" + _ID + r"(?::\d+)?)*[ \t]*=(?![=>])"
)
_STR_BODY = r'[^"\\\n]*(?:\\.[^"\\\n]*)*"'
_NO_ANGLE = r'[^<>{}"%\n-]*'
# Every branch starts with a literal character so that the regex engine can skip
# uninteresting text in C, and captures exactly one group; _KIND maps the group
# number to the token kind.
(
    _NL,
    _COMMENT,
    _STRING,
    _BADSTRING,
    _SYMBOL,
    _RESULTS,
    _SSA,
    _CARET,
    _BLOB,
    _ANGLE,
    _OPEN,
    _ARROW,
    _IGNORE,
    _CLOSE,
    _COLON,
    _COMMENT_LINES,
) = range(16)
_ANGLE_GROUP = "<" + _NO_ANGLE + "(?:-(?!>)" + _NO_ANGLE + ")*>"


def _inert(depth: int) -> str:
    """What may be inside a ``<...>`` group read as one token, ``depth`` deep.

    Strings, ``->`` and balanced ``<>``, ``()``, ``[]`` and ``{}`` groups,
    nothing that changes the scan's state inside a ``<``: no SSA name, no
    ``=>`` or ``>=`` (not a bracket to the scan), no ``//`` comment, no
    ``{-#`` resource block. Read token by token, such a group only pushes and
    pops brackets.
    """
    items = r'[^<>(){}\[\]"%\n\-=/]++|->?|=(?!>)|/(?!/)|"' + _STR_BODY
    if depth:
        sub = _inert(depth - 1)
        items += (
            rf"|<(?:{sub})*+>(?!=)|\((?:{sub})*+\)|\[(?:{sub})*+\]"
            rf"|\{{(?!-#)(?:{sub})*+\}}"
        )
    return items


# A '<...>' group with strings or nested groups in it (target and layout
# attributes: '<"llvm-cpu", "embedded-elf-x86_64", {cpu = "x86-64-v3", ...}>'),
# when the plain _ANGLE_GROUP does not fit; not '<{' (generic properties, an
# attribute dictionary to the scan).
_INERT_ANGLE = rf"<(?!\{{)(?:{_inert(3)})*+>(?!=)"
# Simple types ('f32', 'tensor<4x?xf32>', '!torch.int') read with the ':' or '->'
# before them, so that the common case costs one token.
_TYPE_WORD = r"!?[A-Za-z_][\w$.]*(?:" + _ANGLE_GROUP + ")?"
_TYPE_WORDS = r"(?:[ \t]*" + _TYPE_WORD + r"(?:[ \t]*,[ \t]*" + _TYPE_WORD + r")*)?"
# What may begin a line: 'results = name', a bare word, or an alias definition.
_LINE_HEAD = (
    r"\s*(?:"
    + _RESULT_LIST
    + r'[ \t]*(?:"'
    + _STR_BODY
    + r"|[A-Za-z_][\w$.]*)|[A-Za-z_][\w$.]*|[#!]"
    + _ID
    + r"[ \t]*=(?![=>]))?"
)
# Whole-line comments, a run of them read as one token (not '// -----' splits).
_COMMENT_LINE = r"\s*+//(?! -----)[^\n]*+"
_BRANCHES = [
    ("\n(" + _COMMENT_LINE + r"(?:\n" + _COMMENT_LINE + ")*+)", _COMMENT_LINES),
    ("\n(" + _LINE_HEAD + ")", _NL),
    (r"/(/[^\n]*)", _COMMENT),
    ('"(' + _STR_BODY + ")", _STRING),
    ('"()', _BADSTRING),
    ('@("' + _STR_BODY + "|" + _ID + ")", _SYMBOL),
    ('@(")', _BADSTRING),
    ("%(" + _RESULT_LIST[1:] + ")", _RESULTS),
    ("%(" + _ID + r"(?:#\d+)?(?:[ \t]*,[ \t]*%" + _ID + r"(?:#\d+)?)*)", _SSA),
    (r"\^(" + _ID + ")", _CARET),
    (r"\{(-#)", _BLOB),
    # a '<...>' group with nothing inside that matters: one token, no push/pop
    ("<(" + _ANGLE_GROUP[1:] + ")", _ANGLE),
    ("<(" + _INERT_ANGLE[1:] + ")", _ANGLE),
    (r"\(()", _OPEN),
    (r"\[()", _OPEN),
    (r"\{()", _OPEN),
    ("<()", _OPEN),
    ("-(>" + _TYPE_WORDS + ")", _ARROW),
    ("=(>)", _IGNORE),
    (">(=)", _IGNORE),
    (r"\)()", _CLOSE),
    (r"\]()", _CLOSE),
    (r"\}()", _CLOSE),
    (">()", _CLOSE),
    (":(:?" + _TYPE_WORDS + ")", _COLON),
]

# The fast path: a whole line read with one match of the master expression.
# Three shapes: an op ('%r = name operands {attrs} ins(%a : T) -> T : types',
# maybe ending in a '{' left to the general scan), a region end ('} -> T') and
# a block label ('^bb0(%a: f32):'). Each part stands for exactly the tokens the
# general scan would find there: SSA names that are not results, balanced
# brackets with nothing inside that changes state, one '->' and one trailing
# ':'. Anything else (strings outside attribute dictionaries, symbols,
# comments, '=>' and '>=', glued ops) makes the shapes fail, and the general
# branches read the line token by token.
_FAST_SSA = r"(?>%" + _ID + r"(?:#\d+)?)(?!(?::\d+)?[ \t]*=)"
_BINDS = r"(?!\s*(?:in\b|=(?![=>])))"


def _nested(items: str, depth: int) -> str:
    """``items`` or balanced ``<>``/``()``/``[]`` groups of them, ``depth`` deep."""
    if not depth:
        return items
    sub = _nested(items, depth - 1)
    return items + rf"|<(?:{sub})*+>(?!=)|\((?:{sub})*+\)|\[(?:{sub})*+\]"


# inside brackets of types: no SSA name; '=' and strings without '%' (inside
# brackets, the general scan reads past both: 'layout(<bindings = [#hal...<
# storage_buffer, "ReadOnly">]>)' is one group)
_IN_TYPE = _nested(r'[^<>(){}\[\]"%@^\n=/\-]++|->?|=(?![=>])|"[^"\\\n%]*+"', 3)
_TYPE_GROUP = rf"<(?:{_IN_TYPE})*+>(?!=)|\((?:{_IN_TYPE})*+\)|\[(?:{_IN_TYPE})*+\]"
# inside operand brackets: SSA names, strings without '%', no ':'
_IN_OPERANDS = r'[^<>(){}\[\]"%@^\n/\-:]++|->?|"[^"\\\n%]*+"|' + _FAST_SSA
_IN_OPERANDS += (
    rf"|<(?:{_IN_TYPE})*+>(?!=)|\[(?:{_IN_OPERANDS})*+\]|\((?:{_IN_OPERANDS})*+\)"
)
# an operand group with types, 'ins(%a, %b : T, U)'
_TYPED_GROUP = (
    r"(?:(?<=[^\w$.\-^]ins)|(?<=[^\w$.\-^]outs)|(?<=[^\w$.\-^]inits))\([ \t]*"
    + _FAST_SSA
    + r"(?:[ \t]*,[ \t]*"
    + _FAST_SSA
    + rf")*+[ \t]*:(?:{_IN_TYPE})*+\)"
    + _BINDS
)
# an attribute dictionary on one line (what _brace_kind reads as one)
_IN_DICT = _nested(
    r'[^<>(){}\[\]"%@^\n=/\-]++|->?|=(?![=>])|"[^"\\\n%]*"|%(?![\w$.\-])|' + _FAST_SSA,
    3,
)
_DICT = r"\{(?=[ \t]*+(?:\}|[A-Za-z_][\w$.]*+[ \t]*+[=,}]))(?:" + _IN_DICT + r")*+\}"
_OP_BODY = (
    r'(?:[^<>(){}\[\]"%@^\n/\-:]++|-(?!>)|'
    + _FAST_SSA
    + "|"
    + _TYPED_GROUP
    + rf"|\((?:{_IN_OPERANDS})*+\){_BINDS}"
    + rf"|\[(?:{_IN_OPERANDS})*+\]|<(?:{_IN_TYPE})*+>(?!=)|{_DICT})*+"
)
_ARROW_TYPES = r'(?:[^<>(){}\[\]"%@^\n=/\-:]++|-(?!>)|' + _TYPE_GROUP + ")*+"
# After the trailing ':', a bare dotted word or 'return' after a blank would be
# an op glued to this one ('... : f32 func.return').
_COLON_TYPES = (
    r'(?:[^<>(){}\[\]"%@^\n=/\-: \t]++|->?|[ \t]++(?![A-Za-z_][\w$]*\.'
    r"|return(?![\w$.]))|" + _TYPE_GROUP + ")*+"
)
_OP_LINE = (
    "("
    + _RESULT_LIST
    + r")?[ \t]*+([A-Za-z_][\w$.]*+)"
    + "("
    + _OP_BODY
    + ")"
    + "(?:(->)"
    + _ARROW_TYPES
    + ")?"
    + "(?:(:)"
    + _COLON_TYPES
    + r")?(?=[ \t]*+(?:\{[ \t]*+)?(?:\n|\Z))"
)
_CLOSE_LINE = r"\}(?:[ \t]*+(->)" + _ARROW_TYPES + r")?[ \t]*+(?=\n|\Z)"
_IN_LABEL = _nested(r'[^<>(){}\[\]"@^%\n=/\-]++|->?|(?>%[\w$.\-]*)', 3)
_LABEL_LINE = r"\^" + _ID + rf"(?:\((?:{_IN_LABEL})*+\))?(?:[ \t]*:)?[ \t]*+(?=\n|\Z)"
_FAST_BRANCH = rf"\n\s*+(?:({_OP_LINE})|({_CLOSE_LINE})|({_LABEL_LINE}))"
_OP, _ENDLINE, _LABEL = 16, 17, 18
_BUILD = 19  # a template line that makes a builder (see _TEMPLATES)
# group numbers inside _FAST_BRANCH
_F_RES, _F_NAME, _F_BODY, _F_ARROW, _F_COLON = 2, 3, 4, 5, 6
_ENDLINE_GROUP, _F_CLOSE_ARROW, _LABEL_GROUP = 7, 8, 9
_MASTER = re.compile("|".join([_FAST_BRANCH] + [b for b, _ in _BRANCHES]))
_KIND = (None, _OP, None, None, None, None, None, _ENDLINE, None, _LABEL)
_KIND += tuple(kind for _, kind in _BRANCHES)
assert len(_KIND) == _MASTER.groups + 1
_NL_TOKEN = re.compile("\n(" + _LINE_HEAD + ")")
_SSA_NAME = re.compile("%" + _ID + r"(?:#\d+)?")
_TYPED_GROUP_RE = re.compile(_TYPED_GROUP)
_DICT_RE = re.compile(_DICT)
_LEADING = re.compile("(" + _LINE_HEAD + ")")
# An op name right after a complete type on the same line ('... : f32 return').
_GLUED_OP = re.compile(r"[ \t]+([A-Za-z_][\w$]*\.[\w$.]*|return)(?![\w$.])")
_RESULT_END = re.compile(r"=[ \t]*")
_SPLIT_LINE = re.compile(r"\n[ \t]*// -----")
_SAME_LINE_OP = re.compile(r"[ \t]*([A-Za-z_][\w$]*\.[\w$.]*|return)(?![\w$.])")

_OPNAME = re.compile(r"\s*(?:(" + _STR + r")|([A-Za-z_][\w$.]*))")
_RESULT_NAME = re.compile(r"(%" + _ID + r")(?::(\d+))?")
_STRETCH = re.compile(r"[ \t\w]*")
_PAREN_AHEAD = re.compile(r"[ \t]*\(")
_COLON_AHEAD = re.compile(r"\s*:(?!:)")
_BINDS_AHEAD = re.compile(r"\s*(?:in\b|=(?![=>]))")
_WORD_BEFORE = re.compile(r"\^?[\w$.\-]+\s*\Z")
_DEFINED_NAME = re.compile(r"%" + _ID + r"\s*:(?!:)")
_REGION_AFTER = re.compile(r"\s*(?:->\s*(?:\([^(){}]*\)|[^(){}\n]*))?\s*\{")
_OPERAND_GROUPS = {"ins", "outs", "inits"}
_REGION_PEEK = re.compile(
    r"(?:\s|//[^\n]*)*(?:(\})|(\^|" + _RESULT_LIST + r")|(" + _STR + r"[ \t]*\(?)"
    r"|([A-Za-z_][\w$.]*[ \t]*[=,}:]?))?"
)
_BINARY = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
# The bytes _BINARY does not match: deleting them from the UTF-8 encoding leaves
# something exactly when _BINARY matches (multi-byte UTF-8 sequences and encoded
# surrogates are all >= 0x80), ten times faster than the regex scan.
_NOT_BINARY = bytes(b for b in range(256) if not _BINARY.match(chr(b)))
_ATTR_TOKEN = re.compile(_STR + r"|->|>=|=>|[<(\[{]|[>)\]}]|[,=]")

_BARE_OPS = {
    "module": "builtin.module",
    "func": "func.func",
    "return": "func.return",
    "call": "func.call",
    "call_indirect": "func.call_indirect",
    "constant": "func.constant",
}
# Ops whose regions default to a dialect (MLIR's OpAsmOpInterface::getDefaultDialect).
_DEFAULT_DIALECT = {
    "func.func": "func",
    "pdl.pattern": "pdl",
    "pdl.rewrite": "pdl",
    "pdl_interp.func": "pdl_interp",
    "irdl.dialect": "irdl",
    "irdl.operation": "irdl",
    "irdl.type": "irdl",
    "irdl.attribute": "irdl",
    "spirv.module": "spirv",
    "spirv.func": "spirv",
}
# Words that continue an op when they begin a line, even under a default dialect.
_CONTINUATION = {
    "ins",
    "outs",
    "to",
    "step",
    "iter_args",
    "attributes",
    "else",
    "do",
    "with",
    "into",
    "from",
    "tensor",
    "memref",
    "vector",
    "loc",
}
_FUNCTION_LIKE = {"func", "named_sequence"}
# Builtin ops whose one trailing type fixes every operand's and result's type.
_ACCESS_OPS = {
    "memref.load": "load",
    "affine.load": "load",
    "tensor.extract": "load",
    "memref.store": "store",
    "affine.store": "store",
    "tensor.insert": "insert",
    "memref.dim": "dim",
    "tensor.dim": "dim",
}
# How a single trailing ': T' applies (last part of the op name -> rule).
_TYPED_BY_OPERAND = {"load", "store", "extract", "insert", "dim", "rank"}
_TYPED_OPERANDS_ONLY = {"cmpi", "cmpf", "compare"}
_TYPED_BY_RESULT = {
    "alloc",
    "alloca",
    "empty",
    "splat",
    "from_elements",
    "generate",
    "alloc_tensor",
    "create_mask",
    "constant_mask",
    "iota",
}


def _where(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - text.rfind("\n", 0, pos)


def _error(text: str, pos: int, message: str) -> MLIRSyntaxError:
    line, column = _where(text, pos)
    return MLIRSyntaxError(message, line, column)


def _cap(value: str, limit: int = _VALUE_CAP) -> str:
    if len(value) <= limit:
        return value
    half = limit // 2
    return value[:half] + "…" + value[-half:]


def _unquote(token: str) -> str:
    body = token[1:-1]
    if "\\" not in body:
        return body
    return re.sub(r'\\(["\\])', r"\1", body)


class _Builder:
    """What the scanner knows about the op being read."""

    __slots__ = (
        "op",
        "name_end",
        "seg_start",
        "segs",
        "colon",
        "arrow",
        "operands",
        "sym_end",
        "ptypes",
        "sig",
        "dicts",
        "alias",
        "line",
    )

    def __init__(self, op, start, name_end, alias=None):
        self.op = op
        self.name_end = name_end
        self.seg_start = start
        self.segs = []
        self.colon = -1
        self.arrow = -1
        self.operands = []
        self.sym_end = -1
        self.ptypes = []
        self.sig = None
        self.dicts = []
        self.alias = alias
        # (key, cached facts, end, mark, newline before it or -1: no template
        # to make, -2: one from a _BUILD template) of an op line, see _op_line
        self.line = None


def _trim_end(text: str, start: int, end: int) -> int:
    """``end`` moved back over trailing whitespace and whole comment lines."""
    while True:
        end = start + len(text[start:end].rstrip())
        line_start = text.rfind("\n", start, end) + 1
        if line_start <= start or not text[line_start:end].lstrip().startswith("//"):
            return end
        end = line_start


def _parse_attr_dict(text: str, start: int, end: int, into: dict) -> None:
    """Entries of the dictionary ``text[start:end]`` (between the braces)."""
    depth = 0
    entry = start
    eq = -1
    for m in _ATTR_TOKEN.finditer(text, start, end):
        tok = m.group()
        if len(tok) != 1:
            continue
        if tok == "," or tok == "=":
            if depth == 0:
                if tok == "=":
                    if eq < 0:
                        eq = m.start()
                else:
                    _add_entry(text, entry, eq, m.start(), into)
                    entry = m.end()
                    eq = -1
        elif tok in "<([{":
            depth += 1
        else:
            depth -= 1
    _add_entry(text, entry, eq, end, into)


def _add_entry(text: str, start: int, eq: int, end: int, into: dict) -> None:
    if eq < 0:
        key, value = text[start:end].strip(), ""
    else:
        key, value = text[start:eq].strip(), _cap(text[eq + 1 : end].strip())
    if key.startswith('"') and key.endswith('"') and len(key) > 1:
        key = _unquote(key)
    if key:
        into.setdefault(key, value)


# Caches shared by all readers, for what does not depend on a module's type
# aliases; cleared when they grow past _CACHE_CAP entries.
_CACHE_CAP = 1 << 15
_NAMES: dict = {}  # (name as written, generic, default dialect) -> full, dialect
_SHARED_SIGNATURES: dict = {}  # see _Reader._types
_SHARED_TYPE_LISTS: dict = {}  # type list text, or tuple of them -> tuple of ShapedType
_DICTS: dict = {}  # attribute dictionary text -> its entries


# Op lines read before (one-line ops of modules without type aliases), by their
# text with the SSA names cut out: machine-printed modules repeat the same line
# with other names (in large networks, ~85% of lines); what finish() derives
# from such a line alone does not depend on the names.
# Values are tuples of strings (which the garbage collector stops tracking):
# (op name, typed groups' types, attribute dictionaries, whole), ``whole`` being
# None or, once an op whose text was that line alone (no region, nothing added
# by later tokens) is finished, (operand types, result types, attribute items).
_LINES: dict = {}
_SSA_SPLIT = re.compile("(%" + _ID + r"(?:#\d+)?)")
# Whole physical lines (indentation included, SSA names cut out as in _LINES)
# that the master expression's first branch read before, so that the same line
# with other names is read without it: (_OP, name, dialect, number of results,
# indentation, trailing blanks, facts of _LINES with ``whole`` set) for an op
# line read by _op_line and finished with nothing added (one complete op, made
# without a _Builder; only dotted names, which do not depend on the region's
# default dialect, and results written '%a, %b =', not '%r:2');
# (_ENDLINE, indentation, '->' offset or -1) for a region end '} -> T';
# (_LABEL, indentation, -1) for a block label; (_BUILD, name, number of
# results, indentation, offsets of the name's end, '->', ':' and the text's
# end, key and facts of _LINES) for any other op line read by _op_line (one
# opening a region, say), whose builder it makes as _op_line would.
_TEMPLATES: dict = {}


def _builder_mark(b: _Builder) -> tuple:
    return len(b.operands), b.arrow, b.colon, len(b.ptypes), len(b.dicts)


def _dict_entries(body: str) -> dict:
    """The entries of an attribute dictionary's text (shared cache: machine-printed
    modules repeat the same dictionaries op after op)."""
    entries = _DICTS.get(body)
    if entries is None:
        if len(_DICTS) >= _CACHE_CAP:
            _DICTS.clear()
        entries = _DICTS[body] = {}
        _parse_attr_dict(body, 0, len(body), entries)
    return entries


def _full_name(name: str, generic: bool, dd) -> tuple[str, str]:
    if generic or "." in name:
        full = name
    elif dd:
        full = f"{dd}.{name}"
    else:
        full = _BARE_OPS.get(name, "builtin." + name)
    dialect = full.split(".", 1)[0] if "." in full else "builtin"
    if len(_NAMES) >= _CACHE_CAP:
        _NAMES.clear()
    _NAMES[name, generic, dd] = full, dialect
    return full, dialect


class _Region:
    """An open region: the op that owns it and what the ops inside inherit.

    Regions link to the region around them (``outer``); the innermost open one
    is ``_Reader.region``.
    """

    __slots__ = ("owner", "function", "dialect", "has_block", "depth", "outer")

    def __init__(self, owner, function, dialect, depth, outer):
        self.owner = owner  # builder of the op the region belongs to, or None
        self.function = function  # symbol of the enclosing function-like op
        self.dialect = dialect  # default dialect of bare op names inside
        self.has_block = False  # whether its first block was counted yet
        self.depth = depth  # regions open around its ops, itself included
        self.outer = outer


class _Reader:
    """The scan over one text: state, one handler per token kind, op records.

    State: ``brackets`` is the stack of open brackets as ``(kind, position)``,
    with ``top`` its top kind: ``"R"`` a region (the bottom entry is the top
    level), ``"D"`` the op's attribute dictionary, ``"d"`` other braced custom
    syntax, ``"P"`` an op-level operand group ``(``, ``"S"`` a function
    signature, ``"L"`` a ``(`` holding regions, and ``(``, ``[``, ``<`` other
    brackets. ``region`` is the innermost open region, ``cur`` the builder of
    the op being read.
    """

    def __init__(self, text: str):
        self.text = text
        self.ops: list[Op] = []
        self.type_aliases: dict[str, str] = {}
        self.attribute_aliases: dict[str, str] = {}
        self.num_blocks = 0
        # Per module, a type text is resolved against the aliases known when it
        # is first seen; the shared caches serve modules without type aliases.
        self._signatures: dict = {}
        self._type_lists: dict = _SHARED_TYPE_LISTS
        self.brackets: list[tuple[str, int]] = [("R", 0)]
        self.top = "R"
        self.region = _Region(None, None, None, 0, None)
        self.region.has_block = True
        self.cur: _Builder | None = None
        # An op read from a template line (see _template_line): complete, no
        # builder; (op, position of the newline before it, end of its text).
        self.pending: tuple | None = None
        self.line = 1
        self.line_start = 0
        self.pcolon = -1  # ':' directly inside the open op-level '(' group
        self.pmark = 0  # operands of the op before that group
        self.num_regions = 0
        self.max_depth = 0
        self.splits = 1

    # -- ops ------------------------------------------------------------------

    def _begin(self, start, results, name, generic, name_end) -> _Builder:
        """Finish the op being read and start op ``name`` at ``start``."""
        region = self._next_op(start)
        depth = region.depth
        dd = region.dialect
        full, dialect = _NAMES.get((name, generic, dd)) or _full_name(name, generic, dd)
        op = Op(
            full,
            dialect,
            results,
            (),
            (),
            (),
            {},
            "",
            depth,
            region.function,
            0,
            self.line,
            generic,
        )
        self.ops.append(op)
        self.cur = b = _Builder(op, start, name_end)
        return b

    def _next_op(self, start: int) -> _Region:
        """Finish the op being read for one that starts at ``start``; its region."""
        if self.cur is not None:
            self.finish(self.cur, start)
            self.cur = None
        elif self.pending is not None:
            self._finish_pending(start)
        region = self.region
        if not region.has_block:
            region.has_block = True
            self.num_blocks += 1
        if region.depth > self.max_depth:
            self.max_depth = region.depth
        return region

    def finish(self, b: _Builder, end: int) -> None:
        text = self.text
        start = b.seg_start
        line = b.line
        if line is None or b.segs or b.sig is not None:
            self._finish(b, start, _trim_end(text, start, end))
            if line is not None and line[4] >= 0:
                self._add_builder_template(b, line)
            return
        line_end = line[2]
        # nothing but blanks after the op line: it ends there, no _trim_end
        if line_end > end or text[line_end:end].strip():
            end = _trim_end(text, start, end)
        else:
            end = line_end
        if end != line_end or _builder_mark(b) != line[3]:
            self._finish(b, start, end)
            if line[4] >= 0:
                self._add_builder_template(b, line)
            return
        key, facts = line[0], line[1]
        op = b.op
        whole = facts[3]
        if whole is not None:
            op.text = text[start:end]
            if b.operands:
                op.operands = tuple(b.operands)
            op.operand_types, op.result_types, attributes = whole
            if attributes:
                op.attributes.update(attributes)
        else:
            self._finish(b, start, end)
            attributes = op.attributes
            if any("%" in v for v in attributes.values()):
                return
            whole = op.operand_types, op.result_types, tuple(attributes.items())
            facts = _LINES[key] = facts[:3] + (whole,)
        if line[4] != -1:
            self._add_template(op, start, end, facts)

    def _add_template(self, op: Op, start: int, end: int, facts: tuple) -> None:
        """Keep the physical line of a finished whole op line as a template."""
        text = self.text
        nl = text.rfind("\n", 0, start)
        stop = text.find("\n", end)
        if stop < 0:
            stop = len(text)
        if nl < 0 or text[nl + 1 : start].strip() or text[end:stop].strip():
            return
        line = text[nl + 1 : stop]
        parts = _SSA_SPLIT.split(line)
        names = parts[1::2]
        k = len(op.results)
        # '%r:2 =' expands its results: not a template
        if tuple(names[:k]) != op.results or tuple(names[k:]) != op.operands:
            return
        if len(_TEMPLATES) >= _CACHE_CAP:
            _TEMPLATES.clear()
        _TEMPLATES["\0".join(parts[::2])] = (
            _OP,
            op.name,
            op.dialect,
            k,
            start - nl - 1,
            stop - end,
            facts,
        )

    def _finish(self, b: _Builder, start: int, end: int) -> None:
        text = self.text
        if b.alias is not None:
            value = _cap(text[start:end].strip())
            if b.alias.startswith("!"):
                self.type_aliases[b.alias] = value
                self._type_lists = {}
            else:
                self.attribute_aliases[b.alias] = value
            return
        op = b.op
        segs = b.segs
        if end < start:
            end = start
        if not segs:
            op.text = text[start : min(end, start + _TEXT_CAP)]
            first_end = end
        else:
            segs.append((start, end))
            pieces = []
            room = _TEXT_CAP
            for a, z in segs:
                if room <= 0:
                    break
                piece = text[a : min(z, a + room)]
                pieces.append(piece)
                room -= len(piece) + 1
            op.text = "…".join(pieces)[:_TEXT_CAP]
            op.num_regions = len(segs) - 1
            first_end = segs[0][1]
        if b.operands:
            op.operands = tuple(b.operands)
        if b.colon >= 0 or b.arrow >= 0 or b.sig is not None or b.ptypes:
            self._types(b, segs or ((start, end),))
        if b.dicts:
            attrs = op.attributes
            for body in b.dicts:
                entries = _dict_entries(body)
                if attrs:
                    for key, value in entries.items():
                        attrs.setdefault(key, value)
                else:
                    attrs.update(entries)
        if not op.generic and ("constant" in op.name or "cmp" in op.name):
            self._inline_attributes(b, first_end)

    def _inline_attributes(self, b: _Builder, first_end: int) -> None:
        op = b.op
        last = op.name.rsplit(".", 1)[-1]
        if "constant" in op.name.split(".")[1:] and "value" not in op.attributes:
            stop = b.colon if 0 <= b.colon < first_end else first_end
            value = self.text[b.name_end : stop].strip()
            if value and not value.startswith("{"):
                op.attributes["value"] = _cap(value)
        elif last in ("cmpi", "cmpf") and "predicate" not in op.attributes:
            word = re.match(r"\s*([A-Za-z_]\w*)", self.text[b.name_end : first_end])
            if word:
                op.attributes["predicate"] = word.group(1)

    def _resolve(self, t: str) -> str:
        aliases = self.type_aliases
        for _ in range(16):
            if t[:1] != "!" or t not in aliases:
                break
            t = aliases[t]
        return t

    def _type(self, t: str):
        return parse_type(self._resolve(t))

    def _type_list(self, s: str) -> tuple:
        """The types at the start of ``s``, parsed (cached)."""
        cache = self._type_lists
        parsed = cache.get(s)
        if parsed is None:
            if len(cache) >= _CACHE_CAP:
                cache.clear()
            T = self._type
            parsed = cache[s] = tuple(T(t) for t in type_list(s))
        return parsed

    def _group_types(self, groups: list[str]) -> tuple:
        """The types of typed operand groups (``ins(..)``, ``outs(..)``) in a row.

        Cached like one type list, so that ops with the same groups share one
        tuple (the featurizers memoise work on it by identity).
        """
        if len(groups) == 1:
            return self._type_list(groups[0])
        key = tuple(groups)
        cache = self._type_lists
        parsed = cache.get(key)
        if parsed is None:
            parsed = tuple(chain.from_iterable(map(self._type_list, groups)))
            if len(cache) >= _CACHE_CAP:
                cache.clear()
            cache[key] = parsed
        return parsed

    def _types(self, b: _Builder, segs) -> None:
        op = b.op
        text = self.text
        operand_types: tuple = ()
        result_types: tuple = ()
        if b.colon >= 0:
            for a, z in segs:
                if a <= b.colon < z:
                    break
            key = (text[b.colon + 1 : z], op.name, len(op.results), len(op.operands))
            cached = self._signatures.get(key)
            if cached is None:
                shared = not self.type_aliases
                cached = _SHARED_SIGNATURES.get(key) if shared else None
                if cached is None:
                    T = self._type
                    cached = self._signature(op, key[0].strip())
                    cached = (
                        tuple(T(t) for t in cached[0]),
                        tuple(T(t) for t in cached[1]),
                    )
                    if shared:
                        if len(_SHARED_SIGNATURES) >= _CACHE_CAP:
                            _SHARED_SIGNATURES.clear()
                        _SHARED_SIGNATURES[key] = cached
                self._signatures[key] = cached
            op.operand_types, op.result_types = cached
            if cached[0] or not (b.sig is not None or b.ptypes):
                return
            result_types = cached[1]
        elif b.arrow >= 0:
            for a, z in segs:
                if a <= b.arrow < z:
                    break
            result_types = self._type_list(text[b.arrow + 2 : z])
        if b.sig is not None:
            T = self._type
            operand_types = tuple(
                T(t) for t in signature_types(text[b.sig[0] : b.sig[1]])
            )
        elif b.ptypes:
            operand_types = self._group_types(b.ptypes)
        op.operand_types = operand_types
        op.result_types = result_types

    def _signature(self, op: Op, types: str) -> tuple[tuple, tuple]:
        """Operand and result type texts from the text after the trailing ``:``."""
        form, left, right = split_signature(types)
        if form == "list":
            return self._assign_list(op, left)
        if form == "from":
            return right, left
        if form == "into":
            return left + right, (right if op.results else ())
        return left, right

    def _assign_list(self, op: Op, types: tuple) -> tuple[tuple, tuple]:
        """Operand and result types from a plain trailing ``: T1, ..., Tn``."""
        nres = len(op.results)
        nops = len(op.operands)
        if not types:
            return (), ()
        if len(types) == 1 and op.name in _ACCESS_OPS:
            return self._access_types(op.name, types[0], nops)
        if nres == 0:
            return types, ()
        if nops == 0:
            return (), types
        if len(types) == 1:
            last = op.name.rsplit(".", 1)[-1]
            if last in _TYPED_BY_OPERAND:
                return types, ()
            if last in _TYPED_OPERANDS_ONLY:
                return types * nops, (_with_i1(self._type(types[0])),) * nres
            if last in _TYPED_BY_RESULT:
                return (), types * nres
            return types * nops, types * nres
        if len(types) == nops + nres:
            return types[:nops], types[nops:]
        if len(types) > nres:
            return types[:-nres], types[-nres:]
        return (), types

    def _access_types(self, name: str, t: str, nops: int) -> tuple[tuple, tuple]:
        """Positional types of the builtin load/store/dim ops from their one type."""
        form = _ACCESS_OPS[name]
        if form == "dim":
            return (t, "index")[:nops], ("index",)
        element = self._type(t).element or "none"
        if form == "load":
            return (t,) + ("index",) * (nops - 1), (element,)
        operands = (element, t) + ("index",) * (nops - 2)
        return operands[: max(nops, 0)], ((t,) if form == "insert" else ())

    # -- the scan ---------------------------------------------------------------

    def run(self) -> ParsedModule:
        text = self.text
        search = _MASTER.search
        handlers = _HANDLERS
        # The first line is read as if a newline preceded it.
        keeps = _KEEPS_PENDING
        pos = self._newline(_LEADING.match(text))
        while True:
            if text.startswith("\n", pos) and self.top == "R":
                end = self._template_line(pos)
                if end >= 0:
                    pos = end
                    continue
            m = search(text, pos)
            if m is None:
                break
            k = m.lastindex
            if self.pending is not None and not keeps[k]:
                self._materialize()
            pos = handlers[k](self, m)
        if len(self.brackets) > 1:
            raise self._unclosed("the end of the text")
        if self.cur is not None:
            self.finish(self.cur, len(text))
        elif self.pending is not None:
            self._finish_pending(len(text))
        ops = self.ops
        functions = [
            op.symbol
            for op in ops
            if op.symbol is not None and op.name.rsplit(".", 1)[-1] in _FUNCTION_LIKE
        ]
        return ParsedModule(
            ops=ops,
            functions=functions,
            num_regions=self.num_regions,
            num_blocks=self.num_blocks,
            max_depth=self.max_depth,
            num_splits=self.splits,
            attribute_aliases=self.attribute_aliases,
            type_aliases=self.type_aliases,
        )

    # Each handler reads one master match and returns where the scan goes on.

    def _starts_op(self, word: str, after: int) -> bool:
        """Whether ``word`` at a line start begins an op rather than continues one."""
        if "." in word or word in _BARE_OPS:
            return True
        if self.cur is None and self.pending is None:
            return True
        dd = self.region.dialect
        return (
            dd is not None
            and dd != "func"
            and word not in _CONTINUATION
            and self.text[after : after + 1] not in "({<[="
        )

    def _as_tokens(self, m) -> int:
        """Read the line a fast-path shape did not fit token by token."""
        if self.pending is not None:
            self._materialize()
        return self._newline(_NL_TOKEN.match(self.text, m.start()))

    def _op_line(self, m) -> int:
        text = self.text
        res, name = m.group(_F_RES, _F_NAME)
        name_end = m.end(_F_NAME)
        body_end = m.end(_F_BODY)
        if not (
            self.top == "R"
            and (res is not None or self._starts_op(name, name_end))
            # a module's '{' is always its region
            and (not name.endswith("module") or text.find("{", name_end, body_end) < 0)
        ):
            return self._as_tokens(m)
        st, end = m.span(1)  # the op line ends the match
        self.line += text.count("\n", m.start(), st)
        self.line_start = st
        if end - st > _TEXT_CAP or self.type_aliases:
            b = self._begin(
                st, () if res is None else _results(res), name, False, name_end
            )
            if name_end < body_end:
                b.operands = _SSA_NAME.findall(text, name_end, body_end)
                self._line_groups(b, name_end, body_end)
            b.arrow = m.start(_F_ARROW)
            b.colon = m.start(_F_COLON)
            return end
        self._line_builder(m, None)
        return end

    def _line_builder(self, m, op: Op | None) -> _Builder:
        """The builder of the op line ``m`` (a new op, or ``op`` read before)."""
        text = self.text
        res, name = m.group(_F_RES, _F_NAME)
        name_end = m.end(_F_NAME)
        body_end = m.end(_F_BODY)
        st, end = m.span(1)
        # SSA names appear only in the results and the body (never in the types
        # after them): the line's names are its results', then its operands.
        line = text[st:end]
        parts = _SSA_SPLIT.split(line)
        names = parts[1::2]
        key = "\0".join(parts[::2])  # no NUL in a text parse() accepts
        if res is None:
            k, results = 0, ()
        else:
            k = res.count("%")
            results = tuple(names[:k]) if ":" not in res else _results(res)
        if op is None:
            b = self._begin(st, results, name, False, name_end)
        else:
            b = self.cur = _Builder(op, st, name_end)
        if len(names) > k:
            b.operands = names[k:]
        b.arrow = m.start(_F_ARROW)
        b.colon = m.start(_F_COLON)
        facts = _LINES.get(key)
        if facts is not None and facts[0] == b.op.name:
            if facts[1]:
                b.ptypes = list(facts[1])
            if facts[2]:
                b.dicts = list(facts[2])
        else:  # not seen, or a bare name under another default dialect
            if name_end < body_end:
                self._line_groups(b, name_end, body_end)
            if any("%" in body for body in b.dicts):
                return b  # names in a dictionary: the line is not cached
            if len(_LINES) >= _CACHE_CAP:
                _LINES.clear()
            facts = _LINES[key] = (b.op.name, tuple(b.ptypes), tuple(b.dicts), None)
        # where templates of the line may be made from: the newline before it
        nl = -1
        if op is None and "." in name and not name.endswith("module"):
            nl = m.start()
        b.line = (key, facts, st + len(line.rstrip()), _builder_mark(b), nl)
        return b

    def _add_builder_template(self, b: _Builder, line: tuple) -> None:
        """Keep the physical line of op line ``b`` as a template of its builder.

        Made when the op is finished (most ops are complete in their line and
        get an _OP template instead), from what _op_line left: ``line`` (the
        builder's ``line``) with the ``->`` and ``:`` it saw. Positions are kept
        as offsets into the line with each SSA name cut to one character: the
        op name ends after the results' names, the trailing ``->``, ``:`` and
        the line's end come after all names.
        """
        text = self.text
        start = line[4] + 1
        st = b.segs[0][0] if b.segs else b.seg_start
        stop = text.find("\n", start)
        if stop < 0:
            stop = len(text)
        parts = _SSA_SPLIT.split(text[start:stop])
        k = len(b.op.results)
        if st > stop or b.op.results != tuple(parts[1 : 2 * k : 2]):
            return  # a blank line before it, or '%r:2 =' results
        names = parts[1::2]
        n = len(names)
        name_end = b.name_end - start
        # where the k-th name ends, the (k+1)-th starts and the last ends
        at_k = len("".join(parts[: 2 * k]))
        last = len("".join(parts[: 2 * n]))
        if at_k > name_end or (k < n and at_k + len(parts[2 * k]) < name_end):
            return
        line_end, arrow, colon = line[2], line[3][1], line[3][2]
        if min(x for x in (line_end, arrow, colon) if x >= 0) - start < last:
            return
        after = sum(map(len, names)) - n
        if len(_TEMPLATES) >= _CACHE_CAP:
            _TEMPLATES.clear()
        _TEMPLATES["\0".join(parts[::2])] = (
            _BUILD,
            b.op.name,
            k,
            st - start,
            name_end - (sum(map(len, names[:k])) - k),
            arrow - start - after if arrow >= 0 else -1,
            colon - start - after if colon >= 0 else -1,
            line_end - start - after,
            line[0],
            line[1],
        )

    def _template_line(self, nl: int) -> int:
        """Read the line after the newline at ``nl`` if it is a template line.

        Returns where the scan goes on, or -1 to read the line as before. The
        op is made complete at once and kept in ``pending``: the next op, a
        region end or a block label finishes it as it is; any other token
        first makes it the builder that _op_line would have left
        (_materialize).
        """
        text = self.text
        if self.type_aliases:
            return -1
        stop = text.find("\n", nl + 1)
        if stop < 0:
            stop = len(text)
        parts = _SSA_SPLIT.split(text[nl + 1 : stop])
        template = _TEMPLATES.get("\0".join(parts[::2]))
        if template is None:
            return -1
        kind = template[0]
        if kind == _BUILD:
            return self._builder_from_template(nl, parts[1::2], template)
        if kind != _OP:
            st = nl + 1 + template[1]
            if kind == _LABEL:
                self.line += 1
                self.line_start = st
                self._new_block(st)
                return stop
            arrow = template[2]
            if arrow >= 0:
                arrow += nl
            if not self._region_end_fits(arrow):
                return -1
            self.line += 1
            self._region_end(st, arrow)
            return stop
        _, name, dialect, k, indent, trail, facts = template
        st = nl + 1 + indent
        end = stop - trail
        if end - st > _TEXT_CAP:  # longer names than the template's
            return -1
        region = self._next_op(st)
        self.line += 1
        self.line_start = st
        names = parts[1::2]
        operand_types, result_types, attributes = facts[3]
        op = Op(
            name,
            dialect,
            tuple(names[:k]),
            tuple(names[k:]),
            result_types,
            operand_types,
            dict(attributes),
            text[st:end],
            region.depth,
            region.function,
            0,
            self.line,
            False,
        )
        self.ops.append(op)
        self.pending = (op, nl, end)
        return stop

    def _builder_from_template(self, nl: int, names: list, template: tuple) -> int:
        """What _op_line does for the line after ``nl``, from its template."""
        _, name, k, indent, name_end, arrow, colon, line_end, key, facts = template
        start = nl + 1
        st = start + indent
        after = sum(map(len, names)) - len(names)
        line_end += start + after
        if line_end - st > _TEXT_CAP:  # longer names than the template's
            return -1
        self.line += 1
        self.line_start = st
        name_end += start + sum(map(len, names[:k])) - k
        b = self._begin(st, tuple(names[:k]), name, False, name_end)
        if len(names) > k:
            b.operands = names[k:]
        if arrow >= 0:
            b.arrow = arrow + start + after
        if colon >= 0:
            b.colon = colon + start + after
        facts = _LINES.get(key) or facts
        if facts[1]:
            b.ptypes = list(facts[1])
        if facts[2]:
            b.dicts = list(facts[2])
        # an op complete in its line after all gets an _OP template
        b.line = (key, facts, line_end, _builder_mark(b), -2)
        return line_end

    def _finish_pending(self, end: int) -> None:
        """Finish the pending op where the next statement starts (``end``)."""
        op, nl, line_end = self.pending
        if line_end == end or not self.text[line_end:end].strip():
            self.pending = None
            return
        self.finish(self._materialize(), end)
        self.cur = None

    def _materialize(self) -> _Builder:
        """Make the pending op the builder _op_line would have left."""
        op, nl, _ = self.pending
        self.pending = None
        op.operands = op.operand_types = op.result_types = ()
        op.attributes = {}
        op.text = ""
        return self._line_builder(_MASTER.match(self.text, nl), op)

    def _line_groups(self, b: _Builder, name_end: int, body_end: int) -> None:
        """Typed operand groups and attribute dictionaries of an op line's body."""
        text = self.text
        if text.find(":", name_end, body_end) >= 0:
            for g in _TYPED_GROUP_RE.finditer(text, name_end, body_end):
                b.ptypes.append(text[text.index(":", g.start()) + 1 : g.end() - 1])
        if text.find("{", name_end, body_end) >= 0:
            for g in _DICT_RE.finditer(text, name_end, body_end):
                b.dicts.append(text[g.start() + 1 : g.end() - 1])

    def _end_line(self, m) -> int:
        arrow = m.start(_F_CLOSE_ARROW)
        if self.top != "R" or not self._region_end_fits(arrow):
            return self._as_tokens(m)
        st = m.start(_ENDLINE_GROUP)
        self.line += self.text.count("\n", m.start(), st)
        self._region_end(st, arrow)
        self._add_line_template(m.start(), st, m.end(), _ENDLINE, arrow)
        return m.end()

    def _region_end_fits(self, arrow: int) -> bool:
        """Whether a '} -> T' line closes the innermost region (arrow: '->' or -1)."""
        region = self.region
        return region.outer is not None and (
            arrow < 0 or region.owner is None or region.owner.colon < 0
        )

    def _region_end(self, st: int, arrow: int) -> None:
        self.line_start = st
        cur = self._close_region(st)
        if arrow >= 0 and cur is not None and self.top == "R":
            cur.arrow = arrow

    def _label_line(self, m) -> int:
        if self.top != "R":
            return self._as_tokens(m)
        st = m.start(_LABEL_GROUP)
        self.line += self.text.count("\n", m.start(), st)
        self.line_start = st
        self._new_block(st)
        self._add_line_template(m.start(), st, m.end(), _LABEL, -1)
        return m.end()

    def _add_line_template(self, nl: int, st: int, end: int, kind: int, arrow: int):
        """Keep a region end or block label line read after the newline at
        ``nl`` as a template (the line alone: no blank line before it)."""
        text = self.text
        if text.rfind("\n", 0, st) == nl:
            parts = _SSA_SPLIT.split(text[nl + 1 : end])
            if len(_TEMPLATES) >= _CACHE_CAP:
                _TEMPLATES.clear()
            _TEMPLATES["\0".join(parts[::2])] = (
                kind,
                st - nl - 1,
                arrow - nl if arrow >= 0 else -1,
            )

    def _newline(self, m) -> int:
        pos = m.end()
        s = m.group()
        self.line += s.count("\n")
        word = s.lstrip()
        line_start = self.line_start = pos - len(word)
        if not word or self.top != "R":
            return pos
        c = word[0]
        if c == "%":
            name = word[_RESULT_END.search(word).end() :].lstrip()
            if name[0] == '"':
                self._begin(line_start, _results(word), _unquote(name), True, pos)
            else:
                self._begin(line_start, _results(word), name, False, pos)
        elif c == "#" or c == "!":
            if len(self.brackets) == 1:
                if self.cur is not None:
                    self.finish(self.cur, line_start)
                name = word.rstrip(" \t=")
                self.cur = _Builder(Op(name, ""), pos, pos, alias=name)
        elif self._starts_op(word, pos):
            self._begin(line_start, (), word, False, pos)
        return pos

    def _comment_lines(self, m) -> int:
        # What a newline and a comment token per line would do: count the lines;
        # the last comment's line starts at its '//'.
        end = m.end()
        self.line += m.group().count("\n")
        self.line_start = self.text.find("//", self.text.rfind("\n", 0, end))
        return end

    def _comment(self, m) -> int:
        st = m.start()
        if st == self.line_start and self.text.startswith("// -----", st):
            if len(self.brackets) > 1:
                raise self._unclosed("a '// -----' split")
            if self.cur is not None:
                self.finish(self.cur, st)
                self.cur = None
            self.splits += 1
        return m.end()

    def _string(self, m) -> int:
        pos = m.end()
        if self.top == "R":
            st = m.start()
            cur = self.cur
            if _PAREN_AHEAD.match(self.text, pos) and (
                cur is None or st == self.line_start or cur.colon >= 0
            ):
                self._begin(st, (), _unquote(m.group()), True, pos)
        return pos

    def _bad_string(self, m) -> int:
        raise _error(self.text, m.start(), "unterminated string literal")

    def _symbol(self, m) -> int:
        cur = self.cur
        if cur is not None and self.top == "R" and cur.op.symbol is None:
            sym = m.group(m.lastindex)
            cur.op.symbol = _unquote(sym) if sym[0] == '"' else sym
            cur.sym_end = m.end()
        return m.end()

    def _results_token(self, m) -> int:
        text = self.text
        st = m.start()
        pos = m.end()
        cur = self.cur
        if self.top == "R" and (
            cur is None
            or st == self.line_start
            or not _STRETCH.fullmatch(text, cur.name_end, st)
        ):
            nm = _OPNAME.match(text, pos)
            if nm is not None:
                if nm.group(1):
                    name, generic = _unquote(nm.group(1)), True
                else:
                    name, generic = nm.group(2), False
                self._begin(st, _results(m.group()), name, generic, nm.end())
                self.line += text.count("\n", pos, nm.end())
                return nm.end()
        if cur is not None:
            # '%a, %b = ...' inside an op's text: names it uses
            names = _RESULT_NAME.findall(m.group())
            cur.operands.extend(n for n, _ in names[:-1])
        return pos

    def _ssa(self, m) -> int:
        cur = self.cur
        if cur is not None:
            tok = m.group()
            if "," in tok:
                cur.operands.extend(n.strip() for n in tok.split(","))
            else:
                cur.operands.append(tok)
            # '%arg0: T' in a signature defines a value
            if self.top == "S" and _COLON_AHEAD.match(self.text, m.end()):
                cur.operands.pop()
        return m.end()

    def _caret(self, m) -> int:
        st = m.start()
        if self.top == "R" and (self.cur is None or st == self.line_start):
            self._new_block(st)
        return m.end()

    def _new_block(self, st: int) -> None:
        if self.cur is not None:
            self.finish(self.cur, st)
            self.cur = None
        elif self.pending is not None:
            self._finish_pending(st)
        self.num_blocks += 1
        self.region.has_block = True

    def _blob(self, m) -> int:
        text = self.text
        pos = m.end()
        end = text.find("#-}", pos)
        if end < 0 or _SPLIT_LINE.search(text, pos, end):
            raise _error(text, m.start(), "unterminated '{-#' resource block")
        if self.cur is not None:
            self.finish(self.cur, m.start())
            self.cur = None
        self.line += text.count("\n", pos, end)
        return end + 3

    def _arrow(self, m) -> int:
        cur = self.cur
        if cur is not None and self.top == "R":
            cur.arrow = m.start()
            return self._after_group(m.end())
        return m.end()

    def _colon(self, m) -> int:
        cur = self.cur
        st = m.start()
        if cur is not None and not self.text.startswith("::", st):
            if self.top == "R":
                cur.colon = st
                return self._after_group(m.end())
            if self.top == "P" and self.pcolon < 0:
                self.pcolon = st
        return m.end()

    def _angle(self, m) -> int:
        return self._after_group(m.end())

    def _after_group(self, pos: int) -> int:
        """After an op's types or a closed group: an op glued to the complete op."""
        cur = self.cur
        if self.top == "R" and cur is not None and cur.colon >= 0:
            glued = _GLUED_OP.match(self.text, pos)
            if glued is not None:
                self._begin(glued.start(1), (), glued.group(1), False, glued.end())
                return glued.end()
        return pos

    # -- brackets -----------------------------------------------------------------

    def _push(self, kind: str, st: int) -> None:
        self.brackets.append((kind, st))
        self.top = kind

    def _pop(self) -> None:
        brackets = self.brackets
        brackets.pop()
        self.top = brackets[-1][0]

    def _open(self, m) -> int:
        st = m.start()
        c = self.text[st]
        if c == "{":
            return self._open_brace(st, m.end())
        self._push(self._paren_kind(st) if c == "(" else c, st)
        return m.end()

    def _paren_kind(self, st: int) -> str:
        cur = self.cur
        if self.top != "R" or cur is None:
            return "("
        if cur.sym_end >= 0 and not self.text[cur.sym_end : st].strip():
            return "S"
        if st >= 3 and self.text.startswith("loc", st - 3):
            return "("
        self.pcolon = -1
        self.pmark = len(cur.operands)
        return "P"

    def _open_brace(self, st: int, pos: int) -> int:
        top = self.top
        brackets = self.brackets
        if top == "R":
            kind = "R" if self.cur is None else self._brace_kind(self.cur, st)
        elif top == "L":
            kind = "R"
        elif top == "P" and not self.text[brackets[-1][1] + 1 : st].strip():
            # '({' : the parenthesis holds regions
            brackets[-1] = ("L", brackets[-1][1])
            kind = "R"
        elif top == "<" and brackets[-1][1] == st - 1 and brackets[-2][0] == "R":
            kind = "D"
        else:
            kind = "d"
        if kind != "R":
            self._push(kind, st)
            return pos
        self._open_region(st)
        # '{ scf.yield }': an op on the same line as the brace
        first = _SAME_LINE_OP.match(self.text, pos)
        if first is not None:
            self._begin(first.start(1), (), first.group(1), False, first.end())
            return first.end()
        return pos

    def _open_region(self, st: int) -> None:
        self.num_regions += 1
        owner = self.cur
        outer = self.region
        function = outer.function
        dialect = None
        if owner is not None:
            owner.segs.append((owner.seg_start, st + 1))
            name = owner.op.name
            dialect = _DEFAULT_DIALECT.get(name)
            sym = owner.op.symbol
            if sym is not None and name.rsplit(".", 1)[-1] in _FUNCTION_LIKE:
                function = sym
        self.region = _Region(owner, function, dialect, outer.depth + 1, outer)
        self.cur = None
        self._push("R", st)

    def _close_region(self, st: int) -> _Builder | None:
        """Close the innermost region at ``st``; its owner is read on."""
        if self.cur is not None:
            self.finish(self.cur, st)
        elif self.pending is not None:
            self._finish_pending(st)
        region = self.region
        cur = self.cur = region.owner
        if cur is not None:
            cur.seg_start = st
        self.region = region.outer
        self._pop()
        return cur

    def _close(self, m) -> int:
        st = m.start()
        c = self.text[st]
        top = self.top
        if c == "}":
            if top == "R":
                if len(self.brackets) == 1:
                    raise _error(self.text, st, "unexpected '}' (no region is open)")
                self._close_region(st)
                return m.end()
            if top == "D":
                if self.cur is not None:
                    self.cur.dicts.append(self.text[self.brackets[-1][1] + 1 : st])
            elif top != "d":
                raise self._mismatch(c, st)
            self._pop()
            return m.end()
        if c == ")":
            self._close_paren(st, m.end())
        elif top != ("[" if c == "]" else "<"):
            raise self._mismatch(c, st)
        self._pop()
        return self._after_group(m.end())

    def _close_paren(self, st: int, pos: int) -> None:
        top = self.top
        cur = self.cur
        if top == "P":
            if cur is None:
                return
            pcolon = self.pcolon
            if _BINDS_AHEAD.match(self.text, pos) or (
                pcolon >= 0 and self._arguments(self.brackets[-1][1], st, pos)
            ):
                # '(%i, %j) in ...', '(%i) = (0) to ...' and region arguments
                # 'reducer(%a: f32, %b: f32) {' bind values
                del cur.operands[self.pmark :]
            elif pcolon >= 0 and len(cur.operands) > self.pmark:
                cur.ptypes.append(self.text[pcolon + 1 : st])
        elif top == "S":
            if cur is not None:
                cur.sig = (self.brackets[-1][1] + 1, st)
        elif top != "(" and top != "L":
            raise self._mismatch(")", st)

    def _brace_kind(self, cur: _Builder, st: int) -> str:
        """What the ``{`` at ``st`` after op ``cur`` opens.

        ``"R"`` a region, ``"D"`` the op's attribute dictionary, ``"d"`` some
        other braced custom syntax (``vm.br_table %i { default: ^bb1 }``).
        """
        text = self.text
        if cur.alias is not None:
            return "d"
        if text[max(0, st - 24) : st].rstrip().endswith("attributes"):
            return "D"
        # Modules and functions take attributes only after 'attributes'.
        name = cur.op.name
        if name.endswith("module") or (
            cur.sig is not None and name.rsplit(".", 1)[-1] in _FUNCTION_LIKE
        ):
            return "R"
        m = _REGION_PEEK.match(text, st + 1)
        if m.group(1):
            return "R" if "\n" in text[st : m.start(1)] else "D"
        if m.group(2):
            return "R"
        if m.group(3):
            return "R" if m.group(3).endswith("(") else "D"
        word = m.group(4)
        if word:
            if word[-1] == ":":
                # 'default: ^bb1' is custom syntax, 'test.op : () -> ()' an op
                return "R" if "." in word else "d"
            return "D" if word[-1] in "=,}" else "R"
        return "D"

    def _arguments(self, open_pos: int, close_pos: int, after: int) -> bool:
        """Whether ``(...)`` at ``open_pos`` declares region arguments.

        True when every SSA name in it is followed by ``:`` (``%a: f32``) and a
        region follows (maybe after ``-> types``), unless it is an operand group
        (``ins(``, ``outs(``, ``inits(``) or a successor's operands (``^bb1(``).
        """
        text = self.text
        word = _WORD_BEFORE.search(text, max(0, open_pos - 32), open_pos)
        if word is not None and (
            word.group().startswith("^") or word.group() in _OPERAND_GROUPS
        ):
            return False
        group = text[open_pos + 1 : close_pos]
        if group.count("%") != len(_DEFINED_NAME.findall(group)):
            return False
        return _REGION_AFTER.match(text, after) is not None

    def _opener(self) -> tuple[str, int]:
        """The bracket character and position of the innermost open bracket."""
        kind, st = self.brackets[-1]
        return {"R": "{", "D": "{", "d": "{", "S": "(", "P": "(", "L": "("}.get(
            kind, kind
        ), st

    def _mismatch(self, c: str, st: int) -> MLIRSyntaxError:
        if len(self.brackets) == 1:
            return _error(self.text, st, f"unexpected {c!r} (nothing is open)")
        opener, where = self._opener()
        line, column = _where(self.text, where)
        return _error(
            self.text,
            st,
            f"{c!r} does not match {opener!r} opened at line {line}, column {column}",
        )

    def _unclosed(self, where: str) -> MLIRSyntaxError:
        opener, st = self._opener()
        return _error(
            self.text,
            st,
            f"{opener!r} is never closed before {where} (truncated text?)",
        )


def _token_end(reader: _Reader, m) -> int:
    return m.end()


def _handler_table() -> tuple:
    """The handler of each master match, by the number of the group it ends with.

    Plain functions called with the reader: bound methods made per text would
    cost ~10 us a text, and kept on the reader they would make a reference cycle
    that only the cyclic garbage collector frees.
    """
    handlers = {
        _OP: _Reader._op_line,
        _ENDLINE: _Reader._end_line,
        _LABEL: _Reader._label_line,
        _NL: _Reader._newline,
        _COMMENT: _Reader._comment,
        _COMMENT_LINES: _Reader._comment_lines,
        _STRING: _Reader._string,
        _BADSTRING: _Reader._bad_string,
        _SYMBOL: _Reader._symbol,
        _RESULTS: _Reader._results_token,
        _SSA: _Reader._ssa,
        _CARET: _Reader._caret,
        _BLOB: _Reader._blob,
        _ANGLE: _Reader._angle,
        _OPEN: _Reader._open,
        _ARROW: _Reader._arrow,
        _IGNORE: _token_end,
        _CLOSE: _Reader._close,
        _COLON: _Reader._colon,
    }
    return tuple(handlers.get(k) for k in _KIND)


_HANDLERS = _handler_table()
# The matches whose handlers deal with a pending op themselves (see
# _Reader._template_line); any other first makes it a builder.
_KEEPS_PENDING = tuple(
    kind in (_OP, _ENDLINE, _LABEL, _COMMENT_LINES) for kind in _KIND
)


def _with_i1(t) -> str:
    """The i1 type shaped like ``t`` (the result of a comparison)."""
    if t.kind in ("tensor", "vector") and t.shape is not None:
        dims = "".join(
            f"[{d}]x" if s else f"{'?' if d is None else d}x"
            for d, s in zip(t.shape, t.scalable or (False,) * len(t.shape), strict=True)
        )
        return f"{t.kind}<{dims}i1>"
    return "i1"


def _results(token: str) -> tuple[str, ...]:
    names = []
    for name, count in _RESULT_NAME.findall(token):
        if count:
            n = min(int(count), _MAX_EXPANDED_RESULTS)
            names.extend(f"{name}#{i}" for i in range(n))
        else:
            names.append(name)
    return tuple(names)


def parse(text: str) -> ParsedModule:
    """Read MLIR text into op records.

    Parameters
    ----------
    text : str
        MLIR in custom or generic syntax, one module or several separated by
        ``// -----`` (ops of all splits are returned together, in order). An
        empty or comment-only text is valid MLIR and gives zero ops.

    Returns
    -------
    ParsedModule
        ``ops`` in program order (an op comes before the ops in its regions),
        the symbols of function-like ops (``func.func``, ``util.func``,
        ``llvm.func``, ``transform.named_sequence`` ...), counts of regions,
        blocks (explicit labels plus implicit entry blocks), the deepest op
        nesting, the number of splits, and the ``#attribute`` / ``!type``
        aliases (later definitions win).

    Raises
    ------
    MLIRSyntaxError
        With the line and column of the problem, for unbalanced or mismatched
        brackets (including text cut short), an unterminated string literal or
        ``{-# ... #-}`` block, or binary data (control characters). Unknown
        dialects and unknown custom syntax are not errors.
    TypeError
        If ``text`` is not a ``str``.

    Notes
    -----
    What each op record holds, and where the reader has to guess:

    * ``name`` is the full name. Bare names are resolved as MLIR does: the
      enclosing op's default dialect (``return`` in ``func.func`` ->
      ``func.return``, ``operation`` in ``pdl.pattern`` -> ``pdl.operation``),
      otherwise ``module`` -> ``builtin.module``, ``func`` -> ``func.func``,
      ``return``/``call``/``constant`` -> ``func.*``, anything else ->
      ``builtin.<name>``. ``dialect`` is the part before the first dot.
    * ``results`` are the defined names; ``%x:2`` gives ``%x#0, %x#1``.
      ``operands`` are the SSA names used in the op's own text (regions
      excluded; names bound by the op itself, such as ``scf.for %i =`` or
      ``iter_args(%acc = ...)``, and function arguments are left out).
    * Types come from the op's trailing ``: ...``: ``(A, B) -> C`` and
      ``A, B -> C`` are positional operand and result types; ``A to B``,
      ``A from B`` (result first) and ``A into B`` name both sides. A plain
      list ``: T1, ..., Tn`` goes to the operands when the op has no results,
      to the results when it has no operands, and is split operands-then-results
      otherwise; a single ``: T`` is repeated over operands and results
      (elementwise ops), except for load/store/extract/insert/dim-like ops
      (``operand_types == (T,)``, the memory operand's type), compare ops
      (operands only) and alloc/empty-like ops (results only). Without a
      trailing ``:``, ``(%a, %b : A, B)`` groups (``ins``/``outs``, successor
      operands) give operand types and an op-level ``-> T`` the result types.
      Function-like ops (``@name(%arg0: T, ...) -> R``) get their argument types
      as ``operand_types`` and declared results as ``result_types``. Type
      aliases (``!t = tensor<...>``) are resolved.
    * ``attributes`` holds the ``{...}`` dictionary, generic ``<{...}>``
      properties and ``attributes {...}``; values are raw text, longer ones cut
      to their first and last 256 characters around ``…``. For custom-syntax
      ``*.constant*`` ops the literal (``dense<...>``, ``1.0``) is ``value``;
      for ``cmpi``/``cmpf`` the predicate word is ``predicate``.
    * ``text`` is the op's own text, each region replaced by ``…``, cut to 2048
      characters. ``function`` is the symbol of the enclosing function-like op
      (``None`` for the function op itself at top level); ``symbol`` is the
      op's own ``@name``. ``depth`` counts enclosing regions.
    * Ops written one after another on a single line are split at
      ``%r = name``, at generic ``"name"(`` after an op's ``:``, and at a
      dotted name or ``return`` right after an op's trailing types; other
      result-less ops in mid-line (a bare word after a block label, say) stay
      part of the op before them.

    Examples
    --------
    >>> m = parse('''
    ... func.func @add(%a: tensor<4xf32>) -> tensor<4xf32> {
    ...   %0 = arith.addf %a, %a : tensor<4xf32>
    ...   return %0 : tensor<4xf32>
    ... }''')
    >>> [op.name for op in m.ops]
    ['func.func', 'arith.addf', 'func.return']
    >>> m.ops[1].result_types[0].shape
    (4,)
    """
    if not isinstance(text, str):
        raise TypeError(f"expected MLIR text as str, got {type(text).__name__}")
    if text.encode("utf-8", "surrogatepass").translate(None, _NOT_BINARY):
        junk = _BINARY.search(text)
        raise _error(
            text,
            junk.start(),
            f"binary data (control character {ord(junk.group()):#04x}), not MLIR text",
        )
    return _Reader(text).run()


_INPUTS = ("content", "filename", "file")


def read_source(
    source,
    *,
    input: str = "content",
    encoding: str = "utf-8",
    allow_empty: bool = False,
) -> str:
    """Get MLIR text from what a user passed, with clear errors.

    Parameters
    ----------
    source : str, bytes, os.PathLike or file object
        The text itself (``input="content"``), a path (``"filename"``) or an
        object with ``read()`` (``"file"``).
    input : {"content", "filename", "file"}, default="content"
        How to interpret ``source``, as in scikit-learn's text vectorizers.
    encoding : str, default="utf-8"
        Used to decode bytes; decoding is strict.
    allow_empty : bool, default=False
        Empty or whitespace-only text is valid MLIR (zero ops, and
        :func:`parse` accepts it), but as a document for featurization it is
        almost always a mistake upstream, so it is refused unless this is True.

    Returns
    -------
    str
        The text.

    Raises
    ------
    TypeError
        ``source`` is None or of a type ``input`` does not accept.
    ValueError
        Unknown ``input``; empty text (unless ``allow_empty``).
    MLIRSyntaxError
        Bytes that do not decode, or a file holding binary data (a NUL byte).
    FileNotFoundError, IsADirectoryError, PermissionError
        For ``input="filename"``, with the path in the message.
    """
    if input not in _INPUTS:
        raise ValueError(f"input must be one of {_INPUTS}, got {input!r}")
    if source is None:
        raise TypeError("expected MLIR text, a file name or a file object, got None")
    origin = "text"
    if input == "filename":
        if not isinstance(source, (str, bytes, os.PathLike)):
            raise TypeError(
                f"input='filename' expects a path, got {type(source).__name__}"
            )
        origin = os.fsdecode(source)
        if os.path.isdir(origin):
            raise IsADirectoryError(f"expected an MLIR file, got a directory: {origin}")
        try:
            with open(origin, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"MLIR file not found: {origin}") from None
        source = data
    elif input == "file":
        if not hasattr(source, "read"):
            raise TypeError(
                f"input='file' expects an object with read(), got {type(source).__name__}"
            )
        origin = getattr(source, "name", "file")
        source = source.read()
    if isinstance(source, bytes):
        if b"\x00" in source:
            raise MLIRSyntaxError(
                f"{origin} holds binary data (NUL bytes), not MLIR text"
            )
        try:
            source = source.decode(encoding)
        except UnicodeDecodeError as exc:
            raise MLIRSyntaxError(
                f"{origin} is not valid {encoding} text: cannot decode byte "
                f"{exc.object[exc.start]:#04x} at offset {exc.start}"
            ) from None
    elif not isinstance(source, str):
        raise TypeError(
            f"expected MLIR text as str or bytes, got {type(source).__name__}"
        )
    if not allow_empty and not source.strip():
        raise ValueError(
            f"empty MLIR {'text' if origin == 'text' else 'file: ' + str(origin)}"
            " (pass allow_empty=True to read it as a module with no ops)"
        )
    return source
