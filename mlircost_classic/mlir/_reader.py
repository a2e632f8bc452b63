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
with the simple types after them); a small state machine over a stack of open
brackets does the rest, so the work is linear in the text and nothing
recurses. Most machine-printed lines (an op with its operands, attribute
dictionary, typed ``ins``/``outs`` groups and trailing types; a ``} -> T``
region end; a block label) are read by one match of a first branch that
takes the whole line; lines it does not recognise go through the tokens. An op starts at a statement start:

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
) = range(15)
_ANGLE_GROUP = "<" + _NO_ANGLE + "(?:-(?!>)" + _NO_ANGLE + ")*>"
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
_BRANCHES = [
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


# inside brackets of types: no SSA name, no '='
_IN_TYPE = _nested(r'[^<>(){}\[\]"%@^\n=/\-]++|->?', 3)
_TYPE_GROUP = rf"<(?:{_IN_TYPE})*+>(?!=)|\((?:{_IN_TYPE})*+\)|\[(?:{_IN_TYPE})*+\]"
# inside operand brackets: SSA names, no ':'
_IN_OPERANDS = r'[^<>(){}\[\]"%@^\n/\-:]++|->?|' + _FAST_SSA
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
    2,
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
_OP, _ENDLINE, _LABEL = 15, 16, 17
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
_SHARED_TYPE_LISTS: dict = {}  # type list text -> tuple of ShapedType


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


class _Reader:
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

    # -- ops ------------------------------------------------------------------

    def start(self, start, results, name, generic, name_end, line, depth, fn, dd):
        full, dialect = _NAMES.get((name, generic, dd)) or _full_name(name, generic, dd)
        op = Op(full, dialect, results, (), (), (), {}, "", depth, fn, 0, line, generic)
        self.ops.append(op)
        return _Builder(op, start, name_end)

    def finish(self, b: _Builder, end: int) -> None:
        text = self.text
        start = b.seg_start
        end = _trim_end(text, start, end)
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
            for a, z in b.dicts:
                _parse_attr_dict(text, a, z, attrs)
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
            TL = self._type_list
            if len(b.ptypes) == 1:
                a, z = b.ptypes[0]
                operand_types = TL(text[a:z])
            else:
                operand_types = tuple(t for a, z in b.ptypes for t in TL(text[a:z]))
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

    def run(self) -> ParsedModule:  # noqa: C901 - one loop keeps the scan fast
        text = self.text
        start_op = self.start
        finish = self.finish
        search = _MASTER.search
        kinds = ["R"]  # open brackets; "R" at the bottom is the top level
        opens = [0]
        owners: list = []  # builder (or None) owning each open region
        rfunc: list = [None]  # enclosing function symbol per region level
        rdd: list = [None]  # default dialect per region level
        rblk = [True]  # whether each open region has its first block yet
        top = "R"
        cur = None  # builder of the op being read
        line = 1
        line_start = 0
        pos = 0
        pcolon = -1  # ':' directly inside the open op-level '(' group
        pmark = 0  # operands of the op before that group
        num_regions = 0
        max_depth = 0
        splits = 1

        def begin(start, results, name, generic, name_end):
            nonlocal cur, max_depth
            if cur is not None:
                finish(cur, start)
            if not rblk[-1]:
                rblk[-1] = True
                self.num_blocks += 1
            depth = len(owners)
            if depth > max_depth:
                max_depth = depth
            cur = start_op(
                start,
                results,
                name,
                generic,
                name_end,
                line,
                depth,
                rfunc[-1],
                rdd[-1],
            )

        # The first line is read as if a newline preceded it.
        m = _LEADING.match(text)
        k = _NL
        while True:
            pos = m.end()
            if k == _OP:
                st = m.start(1)
                res = m.group(_F_RES)
                name = m.group(_F_NAME)
                name_end = m.end(_F_NAME)
                body_end = m.end(_F_BODY)
                if (
                    top == "R"
                    and (
                        res is not None
                        or "." in name
                        or cur is None
                        or name in _BARE_OPS
                        or (
                            rdd[-1] is not None
                            and rdd[-1] != "func"
                            and name not in _CONTINUATION
                            and text[name_end : name_end + 1] not in "({<[="
                        )
                    )
                    and (
                        # a module's '{' is always its region
                        text.find("{", name_end, body_end) < 0
                        or not name.endswith("module")
                    )
                ):
                    line += text.count("\n", m.start(), st)
                    line_start = st
                    begin(
                        st, () if res is None else _results(res), name, False, name_end
                    )
                    if name_end < body_end:
                        b = cur
                        b.operands = _SSA_NAME.findall(text, name_end, body_end)
                        if text.find(":", name_end, body_end) >= 0:
                            for g in _TYPED_GROUP_RE.finditer(text, name_end, body_end):
                                b.ptypes.append(
                                    (text.index(":", g.start()) + 1, g.end() - 1)
                                )
                        if text.find("{", name_end, body_end) >= 0:
                            for g in _DICT_RE.finditer(text, name_end, body_end):
                                b.dicts.append((g.start() + 1, g.end() - 1))
                    cur.arrow = m.start(_F_ARROW)
                    cur.colon = m.start(_F_COLON)
                else:
                    m = _NL_TOKEN.match(text, m.start())
                    k = _NL
                    continue
            elif k == _ENDLINE:
                arrow = m.start(_F_CLOSE_ARROW)
                if (
                    top == "R"
                    and len(kinds) > 1
                    and (arrow < 0 or owners[-1] is None or owners[-1].colon < 0)
                ):
                    st = m.start(_ENDLINE_GROUP)
                    line += text.count("\n", m.start(), st)
                    line_start = st
                    if cur is not None:
                        finish(cur, st)
                    cur = owners.pop()
                    if cur is not None:
                        cur.seg_start = st
                    rfunc.pop()
                    rdd.pop()
                    rblk.pop()
                    kinds.pop()
                    opens.pop()
                    top = kinds[-1]
                    if arrow >= 0 and cur is not None and top == "R":
                        cur.arrow = arrow
                else:
                    m = _NL_TOKEN.match(text, m.start())
                    k = _NL
                    continue
            elif k == _LABEL:
                if top == "R":
                    st = m.start(_LABEL_GROUP)
                    line += text.count("\n", m.start(), st)
                    line_start = st
                    if cur is not None:
                        finish(cur, st)
                        cur = None
                    self.num_blocks += 1
                    rblk[-1] = True
                else:
                    m = _NL_TOKEN.match(text, m.start())
                    k = _NL
                    continue
            elif k == _SSA:
                if cur is not None:
                    tok = m.group()
                    if "," in tok:
                        cur.operands.extend(n.strip() for n in tok.split(","))
                    else:
                        cur.operands.append(tok)
                    # '%arg0: T' in a signature defines a value
                    if top == "S" and _COLON_AHEAD.match(text, pos):
                        cur.operands.pop()
            elif k == _CLOSE or k == _ANGLE:
                st = m.start()
                c = text[st]
                if k == _ANGLE:
                    pass
                elif c == "}":
                    if top == "R":
                        if len(kinds) == 1:
                            raise _error(text, st, "unexpected '}' (no region is open)")
                        if cur is not None:
                            finish(cur, st)
                        cur = owners.pop()
                        if cur is not None:
                            cur.seg_start = st
                        rfunc.pop()
                        rdd.pop()
                        rblk.pop()
                    elif top == "D":
                        if cur is not None:
                            cur.dicts.append((opens[-1] + 1, st))
                    elif top != "d":
                        raise self._mismatch(c, kinds, opens, st)
                elif c == ")":
                    if top == "P" and cur is not None:
                        if _BINDS_AHEAD.match(text, pos) or (
                            pcolon >= 0 and self._arguments(opens[-1], st, pos)
                        ):
                            # '(%i, %j) in ...', '(%i) = (0) to ...' and region
                            # arguments 'reducer(%a: f32, %b: f32) {' bind values
                            del cur.operands[pmark:]
                        elif pcolon >= 0 and len(cur.operands) > pmark:
                            cur.ptypes.append((pcolon + 1, st))
                    elif top == "S":
                        if cur is not None:
                            cur.sig = (opens[-1] + 1, st)
                    elif top != "(" and top != "L":
                        raise self._mismatch(c, kinds, opens, st)
                elif c == "]":
                    if top != "[":
                        raise self._mismatch(c, kinds, opens, st)
                elif top != "<":
                    raise self._mismatch(c, kinds, opens, st)
                if k == _CLOSE:
                    kinds.pop()
                    opens.pop()
                    top = kinds[-1]
                if top == "R" and cur is not None and cur.colon >= 0 and c != "}":
                    glued = _GLUED_OP.match(text, pos)
                    if glued is not None:
                        st = glued.start(1)
                        begin(st, (), glued.group(1), False, glued.end())
                        m = search(text, glued.end())
                        if m is None:
                            break
                        k = _KIND[m.lastindex]
                        continue
            elif k == _OPEN:
                st = m.start()
                c = text[st]
                if c == "(":
                    if top == "R" and cur is not None:
                        if cur.sym_end >= 0 and not text[cur.sym_end : st].strip():
                            top = "S"
                        elif st >= 3 and text.startswith("loc", st - 3):
                            top = "("
                        else:
                            top = "P"
                            pcolon = -1
                            pmark = len(cur.operands)
                    else:
                        top = "("
                elif c == "{":
                    region = False
                    if top == "R":
                        kind = "R" if cur is None else self._brace_kind(cur, st)
                        region = kind == "R"
                        if not region:
                            top = kind
                    elif top == "L":
                        region = True
                    elif top == "P" and not text[opens[-1] + 1 : st].strip():
                        kinds[-1] = "L"
                        region = True
                    elif top == "<" and opens[-1] == st - 1 and kinds[-2] == "R":
                        top = "D"
                    else:
                        top = "d"
                    if region:
                        num_regions += 1
                        owner = cur
                        if owner is not None:
                            owner.segs.append((owner.seg_start, st + 1))
                            name = owner.op.name
                            rdd.append(_DEFAULT_DIALECT.get(name))
                            sym = owner.op.symbol
                            if (
                                sym is not None
                                and name.rsplit(".", 1)[-1] in _FUNCTION_LIKE
                            ):
                                rfunc.append(sym)
                            else:
                                rfunc.append(rfunc[-1])
                        else:
                            rdd.append(None)
                            rfunc.append(rfunc[-1])
                        owners.append(owner)
                        rblk.append(False)
                        cur = None
                        top = "R"
                        kinds.append(top)
                        opens.append(st)
                        # '{ scf.yield }': an op on the same line as the brace
                        first = _SAME_LINE_OP.match(text, pos)
                        if first is not None:
                            begin(
                                first.start(1), (), first.group(1), False, first.end()
                            )
                            pos = first.end()
                        m = search(text, pos)
                        if m is None:
                            break
                        k = _KIND[m.lastindex]
                        continue
                else:
                    top = c
                kinds.append(top)
                opens.append(st)
            elif k == _NL:
                s = m.group()
                line += s.count("\n")
                word = s.lstrip()
                line_start = pos - len(word)
                if word and top == "R":
                    c = word[0]
                    if c == "%":
                        eq = _RESULT_END.search(word).end()
                        name = word[eq:].lstrip()
                        if name[0] == '"':
                            begin(line_start, _results(word), _unquote(name), True, pos)
                        else:
                            begin(line_start, _results(word), name, False, pos)
                    elif c == "#" or c == "!":
                        if len(kinds) == 1:
                            if cur is not None:
                                finish(cur, line_start)
                            name = word.rstrip(" \t=")
                            cur = _Builder(Op(name, ""), pos, pos, alias=name)
                    elif (
                        "." in word
                        or cur is None
                        or word in _BARE_OPS
                        or (
                            rdd[-1] is not None
                            and rdd[-1] != "func"
                            and word not in _CONTINUATION
                            and text[pos : pos + 1] not in "({<[="
                        )
                    ):
                        begin(line_start, (), word, False, pos)
            elif k == _COLON:
                if cur is not None and not text.startswith("::", m.start()):
                    st = m.start()
                    if top == "R":
                        cur.colon = st
                        glued = _GLUED_OP.match(text, pos)
                        if glued is not None:
                            st = glued.start(1)
                            begin(st, (), glued.group(1), False, glued.end())
                            pos = glued.end()
                    elif top == "P" and pcolon < 0:
                        pcolon = st
            elif k == _RESULTS:
                st = m.start()
                if top == "R" and (
                    cur is None
                    or st == line_start
                    or not _STRETCH.fullmatch(text, cur.name_end, st)
                ):
                    nm = _OPNAME.match(text, pos)
                    if nm is not None:
                        if nm.group(1):
                            name, generic = _unquote(nm.group(1)), True
                        else:
                            name, generic = nm.group(2), False
                        begin(st, _results(m.group()), name, generic, nm.end())
                        line += text.count("\n", pos, nm.end())
                        pos = nm.end()
                if pos == m.end() and cur is not None:
                    names = _RESULT_NAME.findall(m.group())
                    cur.operands.extend(n for n, _ in names[:-1])
            elif k == _STRING:
                if top == "R":
                    st = m.start()
                    if _PAREN_AHEAD.match(text, pos) and (
                        cur is None or st == line_start or cur.colon >= 0
                    ):
                        begin(st, (), _unquote(m.group()), True, pos)
            elif k == _COMMENT:
                st = m.start()
                if st == line_start and text.startswith("// -----", st):
                    if len(kinds) > 1:
                        raise self._unclosed(kinds, opens, "a '// -----' split")
                    if cur is not None:
                        finish(cur, st)
                        cur = None
                    splits += 1
            elif k == _SYMBOL:
                if cur is not None and top == "R" and cur.op.symbol is None:
                    sym = m.group(m.lastindex)
                    cur.op.symbol = _unquote(sym) if sym[0] == '"' else sym
                    cur.sym_end = pos
            elif k == _ARROW:
                if cur is not None and top == "R":
                    cur.arrow = m.start()
                    if cur.colon >= 0:
                        glued = _GLUED_OP.match(text, pos)
                        if glued is not None:
                            st = glued.start(1)
                            begin(st, (), glued.group(1), False, glued.end())
                            pos = glued.end()
            elif k == _CARET:
                st = m.start()
                if top == "R" and (cur is None or st == line_start):
                    if cur is not None:
                        finish(cur, st)
                        cur = None
                    self.num_blocks += 1
                    rblk[-1] = True
            elif k == _BLOB:
                end = text.find("#-}", pos)
                if end < 0 or _SPLIT_LINE.search(text, pos, end):
                    raise _error(text, m.start(), "unterminated '{-#' resource block")
                if cur is not None:
                    finish(cur, m.start())
                    cur = None
                line += text.count("\n", pos, end)
                pos = end + 3
            elif k == _BADSTRING:
                raise _error(text, m.start(), "unterminated string literal")
            m = search(text, pos)
            if m is None:
                break
            k = _KIND[m.lastindex]

        if len(kinds) > 1:
            raise self._unclosed(kinds, opens, "the end of the text")
        if cur is not None:
            finish(cur, len(text))
        ops = self.ops
        functions = [
            op.symbol
            for op in ops
            if op.symbol is not None and op.name.rsplit(".", 1)[-1] in _FUNCTION_LIKE
        ]
        return ParsedModule(
            ops=ops,
            functions=functions,
            num_regions=num_regions,
            num_blocks=self.num_blocks,
            max_depth=max_depth,
            num_splits=splits,
            attribute_aliases=self.attribute_aliases,
            type_aliases=self.type_aliases,
        )

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

    def _mismatch(self, c, kinds, opens, st) -> MLIRSyntaxError:
        top = kinds[-1]
        if len(kinds) == 1:
            return _error(self.text, st, f"unexpected {c!r} (nothing is open)")
        opener = {"R": "{", "D": "{", "d": "{", "S": "(", "P": "(", "L": "("}.get(
            top, top
        )
        line, column = _where(self.text, opens[-1])
        return _error(
            self.text,
            st,
            f"{c!r} does not match {opener!r} opened at line {line}, column {column}",
        )

    def _unclosed(self, kinds, opens, where: str) -> MLIRSyntaxError:
        top = kinds[-1]
        opener = {"R": "{", "D": "{", "d": "{", "S": "(", "P": "(", "L": "("}.get(
            top, top
        )
        return _error(
            self.text,
            opens[-1],
            f"{opener!r} is never closed before {where} (truncated text?)",
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
