"""A region's text in the form IREE gives a dispatch's executable source.

:func:`~mlircost_classic.featurize.partition_dispatches` finds the ops of each
dispatch in the module's own text; the kernels model learned from IREE's
executable sources, in which those ops have been through more of the
compiler. :func:`dispatch_form` rewrites a region's function the way IREE's
passes do before it writes an executable source (each form checked against
the bundled kernels' texts):

- torch-mlir's ``tm_tensor`` ops (sort, scan, scatter ...) are IREE's
  ``iree_linalg_ext`` ones (``ConvertTMTensorToLinalgExt``);
- a named convolution or pool is the ``linalg.generic`` IREE makes of it
  (every convolution among the bundled kernels is one), its window read as
  ``o * stride + k * dilation``;
- a loaded transpose of the two innermost dims that only the region's
  matmuls read, as right operand, is bound untransposed and read through the
  matmul's indexing maps (``linalg.matmul indexing_maps = [(d0, d2), (d1,
  d2), (d0, d1)]``: a ``torch.nn.Linear``'s weight as torch holds it, the
  form in 6,658 of the 6,792 bundled kernels with a matmul);
- an elementwise ``linalg.generic`` whose result only one ``linalg.generic``
  of the region reads (and that is not stored) fuses into it
  (``linalg::fuseElementwiseOps``, run by ``ElementwiseOpFusion``): the
  producer's inputs take the place of its result among the consumer's
  inputs, their indexing maps composed with the inverse of the producer's
  result map and the consumer's map of that operand, the producer's payload
  runs first in the consumer's body. Fusion needs the producer's result map
  to be a permutation, the consumer's map of the operand to have as many
  results as the producer has loops, the consumer to read it through one map
  only, and every loop of the fused op to read its bound from some operand;
- identical inputs (the same value through the same map) are one, unused
  inputs are dropped (``linalg.generic``'s canonicalization), and ops whose
  results nothing reads are erased (the fused producer, its ``tensor.empty``);
- a ``tensor.pad`` that only a store reads is written by the store into the
  padded tensor (``readwrite``) at the pad's low offsets;
- where the region holds only generics and ops whose types are all they say
  of shapes (loads, stores, empties, fills, constants, reshapes of unit
  dims), every unit dim is dropped (``FoldUnitExtentDims``: loops, map
  results, types, a ``linalg.index`` of a unit loop a constant 0) and runs of
  loops that every op reads together, in order, with one iterator type, are
  merged (``CollapseDimensions``; a tensor two ops share keeps apart what
  either keeps apart; a loop in a window sum stays alone).

The i1 tensors a dispatch reads or writes are held as i8 by the bindings
themselves (``_binding`` in :mod:`._partition`).
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass

from ..mlir import MLIRSyntaxError, Op, parse
from ._function import _iterators, _line_spans, _Ops, _split_functions, _value
from ._rules import _attr, _parse_maps

__all__ = ["dispatch_form"]

_SSA_RE = re.compile(r"%[\w$.-]+")
_ARG_RE = re.compile(r"(%[\w$.-]+)\s*:\s*([^,]+?)(?=,\s*%|$)")
_INDEX_RE = re.compile(r"linalg\.index (\d+)")
_TYPE_ALIAS_RE = re.compile(r"^\s*![\w.$-]+\s*=", re.M)
# A map result this module reads: sums of dims times constants, and constants.
_TERM = r"(?:d\d+(?: \* \d+)?|\d+)"
_EXPR_RE = re.compile(rf"{_TERM}(?: \+ {_TERM})*")
_DIM_RE = re.compile(r"\bd\d+\b")
# Values a payload line defines, block arguments included.
_DEFINED_RE = re.compile(r"^(%[\w$.-]+)(?::\d+)? =|(%[\w$.-]+):", re.M)
# Ops a region may leave unread and IREE then erases.
_PURE = frozenset(
    {
        "tensor.empty",
        "linalg.fill",
        "arith.constant",
        "linalg.generic",
        "tensor.expand_shape",
        "tensor.collapse_shape",
    }
)


@dataclass
class _Generic:
    """One single-result ``linalg.generic`` of a region, in parts."""

    result: str
    ins: list[str]
    in_types: list[str]
    maps: list[list[str]]  # one per operand, ins then the out: result exprs
    dims: list[str]
    out: str
    out_type: str
    iterators: list[str]
    args: list[str]  # block arguments, ins then the out
    arg_types: list[str]
    body: list[str]  # payload lines, the yield left out
    yielded: str
    yield_type: str

    def text(self) -> str:
        head = ", ".join(self.dims)
        maps = ", ".join(
            f"affine_map<({head}) -> ({', '.join(results)})>" for results in self.maps
        )
        iterators = ", ".join(f'"{it}"' for it in self.iterators)
        ins = (
            f"ins({', '.join(self.ins)} : {', '.join(self.in_types)}) "
            if self.ins
            else ""
        )
        args = ", ".join(
            f"{a}: {t}" for a, t in zip(self.args, self.arg_types, strict=True)
        )
        return "\n".join(
            [
                f"{self.result} = linalg.generic {{indexing_maps = [{maps}], "
                f"iterator_types = [{iterators}]}} {ins}"
                f"outs({self.out} : {self.out_type}) {{",
                f"^bb0({args}):",
                *self.body,
                f"linalg.yield {self.yielded} : {self.yield_type}",
                f"}} -> {self.out_type}",
            ]
        )

    def bounded(self) -> bool:
        """Whether every loop is some operand's dim (its bound is known)."""
        seen = {r for results in self.maps for r in results}
        return all(d in seen for d in self.dims)


def _generic(op: Op, span: str, aliases: dict[str, str]) -> _Generic | None:
    """``op`` (its text ``span``) in parts; None for any other op or one this
    module does not rewrite (several results, blocks or nested regions, maps
    with other than dims and constants)."""
    if op.name != "linalg.generic" or len(op.results) != 1 or "#" in op.results[0]:
        return None
    maps = _parse_maps(_attr(op, ("indexing_maps",)) or "", aliases)
    iterators = _iterators(op)
    n = len(op.operands)
    if not maps or len(maps) != n or n < 1 or len(op.operand_types) != n:
        return None
    dims = maps[0][0]
    if any(m[0] != dims for m in maps) or len(iterators) != len(dims):
        return None
    if any(
        not (r in dims or _EXPR_RE.fullmatch(r)) for _, results in maps for r in results
    ):
        return None
    lines = span.split("\n")
    if (
        len(lines) < 4
        or not lines[1].startswith("^bb0(")
        or not lines[-1].startswith("}")
    ):
        return None
    body = _without_asserts(lines[2:-1])
    if not body or not body[-1].startswith("linalg.yield "):
        return None
    if any(b.startswith(("^", "}")) or b.endswith("{") for b in body):
        return None
    args = _ARG_RE.findall(lines[1][len("^bb0(") : lines[1].rindex(")")])
    if len(args) != n:
        return None
    yielded, _, yield_type = body[-1][len("linalg.yield ") :].partition(" : ")
    if "," in yielded:
        return None
    types = [t.raw for t in op.operand_types]
    if not all(types):
        return None
    return _Generic(
        result=op.results[0],
        ins=list(op.operands[:-1]),
        in_types=types[:-1],
        maps=[list(results) for _, results in maps],
        dims=list(dims),
        out=op.operands[-1],
        out_type=types[-1],
        iterators=iterators,
        args=[a for a, _ in args],
        arg_types=[t.strip() for _, t in args],
        body=body[:-1],
        yielded=yielded.strip(),
        yield_type=yield_type.strip(),
    )


def _without_asserts(body: list[str]) -> list[str]:
    """A payload without torch's index checks (``cf.assert`` and the compares
    only they read): IREE's executable sources hold none."""
    body = [b for b in body if not b.startswith("cf.assert ")]
    while True:
        text = "\n".join(body)
        dead = [
            k
            for k, b in enumerate(body)
            if (m := _DEFINED_RE.match(b))
            and m.group(1)
            and " = arith.cmp" in b
            and len(re.findall(re.escape(m.group(1)) + r"(?![\w$.-])", text)) == 1
        ]
        if not dead:
            return body
        body = [b for k, b in enumerate(body) if k not in dead]


def _rename(lines: list[str], names: dict[str, str]) -> list[str]:
    if not names:
        return lines
    return [_SSA_RE.sub(lambda m: names.get(m.group(0), m.group(0)), b) for b in lines]


def _fuse(producer: _Generic, consumer: _Generic, k: int, fresh) -> _Generic | None:
    """``producer`` fused into ``consumer`` through its ``k``-th input (None
    when IREE would not fuse them)."""
    if any(it != "parallel" for it in producer.iterators):
        return None
    out_map = producer.maps[-1]
    if sorted(out_map) != sorted(producer.dims) or len(set(out_map)) != len(out_map):
        return None  # the producer's result map is no permutation
    reads = consumer.maps[k]
    if len(reads) != len(producer.dims):
        return None
    sub = dict(zip(out_map, reads, strict=True))
    composed = [[sub.get(r, r) for r in results] for results in producer.maps[:-1]]
    # the producer's payload indexes its own loops: they must be consumer loops
    index = {}
    for m in _INDEX_RE.finditer("\n".join(producer.body)):
        at = sub.get(producer.dims[int(m.group(1))], "")
        if at not in consumer.dims:
            return None
        index[m.group(0)] = f"linalg.index {consumer.dims.index(at)}"
    new_args = [fresh() for _ in producer.ins]
    names = dict(zip(producer.args[:-1], new_args, strict=True))
    # sibling payloads reuse value names (MLIR numbers each region anew)
    names |= {v: fresh() for v in _payload_values(producer.body)}
    own = {v: fresh() for v in _payload_values(consumer.body)}
    if re.search(
        re.escape(producer.args[-1]) + r"(?![\w$.-])",
        "\n".join([*producer.body, producer.yielded]),
    ):
        return None  # the payload reads its init
    body = _rename(producer.body, names)
    if index:
        body = [_INDEX_RE.sub(lambda m: index[m.group(0)], b) for b in body]
    value = names.get(producer.yielded, producer.yielded)
    own[consumer.args[k]] = value
    body += _rename(consumer.body, own)
    n = len(consumer.ins)
    fused = _Generic(
        result=consumer.result,
        ins=consumer.ins[:k] + producer.ins + consumer.ins[k + 1 :],
        in_types=consumer.in_types[:k] + producer.in_types + consumer.in_types[k + 1 :],
        maps=consumer.maps[:k] + composed + consumer.maps[k + 1 :],
        dims=consumer.dims,
        out=consumer.out,
        out_type=consumer.out_type,
        iterators=consumer.iterators,
        args=consumer.args[:k]
        + new_args
        + consumer.args[k + 1 : n]
        + consumer.args[n:],
        arg_types=consumer.arg_types[:k]
        + producer.arg_types[:-1]
        + consumer.arg_types[k + 1 :],
        body=body,
        yielded=_rename([consumer.yielded], own)[0],
        yield_type=consumer.yield_type,
    )
    return fused if fused.bounded() else None


def _payload_values(body: list[str]) -> list[str]:
    """The values a payload's ops define."""
    return [m.group(1) for b in body if (m := _DEFINED_RE.match(b)) and m.group(1)]


def _canonicalize(g: _Generic) -> _Generic:
    """Identical inputs merged, unread inputs dropped (as long as every loop
    keeps an operand that bounds it)."""
    seen: dict[tuple[str, tuple[str, ...]], str] = {}
    keep: list[int] = []
    names: dict[str, str] = {}
    for i, (v, results) in enumerate(zip(g.ins, g.maps, strict=False)):
        key = (v, tuple(results))
        if key in seen:
            names[g.args[i]] = seen[key]
        else:
            seen[key] = g.args[i]
            keep.append(i)
    body = _rename(g.body, names)
    yielded = names.get(g.yielded, g.yielded)
    text = "\n".join([*body, yielded])
    read = set(_SSA_RE.findall(text))
    n = len(g.ins)
    for i in list(keep):
        if g.args[i] in read:
            continue
        trial = [j for j in keep if j != i]
        maps = [g.maps[j] for j in trial] + [g.maps[-1]]
        if all(d in {r for m in maps for r in m} for d in g.dims):
            keep = trial
    return _Generic(
        result=g.result,
        ins=[g.ins[i] for i in keep],
        in_types=[g.in_types[i] for i in keep],
        maps=[g.maps[i] for i in keep] + [g.maps[-1]],
        dims=g.dims,
        out=g.out,
        out_type=g.out_type,
        iterators=g.iterators,
        args=[g.args[i] for i in keep] + g.args[n:],
        arg_types=[g.arg_types[i] for i in keep] + g.arg_types[n:],
        body=body,
        yielded=yielded,
        yield_type=g.yield_type,
    )


def dispatch_form(text: str, swapped: dict | None = None) -> str:
    """``text``, a region's executable source, with its ops as IREE leaves them
    (module docstring). Text it cannot read is returned unchanged.

    Parameters
    ----------
    text : str
        A region's MLIR text as :func:`partition_dispatches` writes it.
    swapped : dict of str -> ShapedType, optional
        Loaded values that transpose their two innermost dims for the
        region's matmuls to read as right operands, and the type of what
        they transpose: that tensor is bound instead, the transpose moved into
        the matmuls' indexing maps.

    Returns
    -------
    str
    """
    return _dispatch_form(text, swapped, _read)


def _read(lines: list[str]) -> tuple[_Ops, list[int], dict[str, str]] | None:
    """A region's function (``lines``: its attribute aliases and function)
    read: its top-level ops, the line each starts on (1-based) and the
    aliases; None unless it holds one function."""
    module = parse("\n".join(lines))
    functions = _split_functions(module)
    if len(functions) != 1:
        return None
    ops = functions[0][1]
    return _Ops(ops), [op.line for op in ops], module.attribute_aliases


class _RegionReader:
    """Reads the functions of one module's regions without parsing again
    what the module's parse has read.

    A region's body (the lines :func:`partition_dispatches` gives it, each
    one op's text or a few) is mostly the module's own op texts: an entry
    that is the text of one of the module's ops (``known``: text -> op, the
    op alone on its lines, no type aliases) is that op; the other entries of
    all the module's regions (bindings, loads, stores, ops the partitioner
    wrote) are parsed together, once, after the region's alias lines. A
    reader answers as :func:`_read` would for the region's lines, and leaves
    lines other than its body's (``tm_tensor`` ops renamed) to :func:`_read`.
    """

    def __init__(self, module_text: str):
        # a type alias the module defines is not in the region's text: the
        # module's ops read it, the region's would not
        self.learning = _TYPE_ALIAS_RE.search(module_text) is None
        self.readable = True  # False once the entries fail to parse
        self.known: dict[str, Op] = {}
        self.waiting: list[list[str]] = []
        self.entries: dict[str, list[tuple[int, Op]]] = {}
        self.head: list[str] | None = None
        self.aliases: dict[str, str] = {}

    def learn(self, ops: list[Op], spans: list[str]) -> None:
        """Know one function's ops (``spans``: their texts, as
        :func:`._function._spans` cuts them) that their texts read alone:
        each alone on its lines, its own text on one line, not the last."""
        if not self.learning:
            return
        for j, op in enumerate(ops[:-1]):
            if (
                "\n" in op.text
                or ops[j + 1].line <= op.line
                or (j and ops[j - 1].line >= op.line)
                or not spans[j].startswith(op.text.partition("{…}")[0])
            ):
                continue
            self.known.setdefault(spans[j], op)

    def reader(self, body: list[str]):
        """A ``read`` for :func:`_dispatch_form` of the region ``body``."""
        self.waiting.append(body)
        return functools.partial(self._read, body)

    def _parse(self) -> None:
        """Read the entries of the waiting bodies (each op with its line
        within its entry)."""
        new = list(
            dict.fromkeys(
                entry
                for body in self.waiting
                for entry in body
                if entry not in self.known and entry not in self.entries
            )
        )
        self.waiting = []
        lines = [*self.head, "func.func @regions() {"]
        starts = []
        for entry in new:
            starts.append(len(lines) + 1)
            lines += entry.split("\n")
        lines.append("}")
        module = parse("\n".join(lines))
        self.aliases = module.attribute_aliases
        for entry in new:
            self.entries[entry] = []
        for _, ops, _ in _split_functions(module):
            for op in ops:
                k = bisect.bisect_right(starts, op.line) - 1
                self.entries[new[k]].append((op.line - starts[k], op))

    def _read(self, body: list[str], lines: list[str]):
        body_lines = "\n".join(body).split("\n")
        n = len(lines) - len(body_lines) - 2
        if (
            n < 0
            or lines[n + 1 : -1] != body_lines
            or self.head not in (None, lines[:n])
        ):
            return _read(lines)
        self.head = lines[:n]
        if self.waiting:
            try:
                self._parse()
            except MLIRSyntaxError:  # each region read alone tells which
                self.readable = False
        if not self.readable:
            return _read(lines)
        ops, starts = [], []
        line = n + 2  # the body's first line (1-based)
        for entry in body:
            op = self.known.get(entry)
            for at, o in [(0, op)] if op is not None else self.entries[entry]:
                ops.append(o)
                starts.append(line + at)
            line += entry.count("\n") + 1
        if not ops:
            return None
        return _Ops(ops), starts, self.aliases


def _dispatch_form(text: str, swapped: dict | None, read) -> str:
    """:func:`dispatch_form`, the region's function read by ``read`` (as
    :func:`_read` reads it)."""
    if "tm_tensor." in text:  # ConvertTMTensorToLinalgExt
        text = text.replace("tm_tensor.", "iree_linalg_ext.")
    if not swapped and not any(word in text for word in _REWRITTEN):
        return text
    # Only the function is read (and the attribute aliases its ops use): the
    # executable's wrapper lines say nothing of its ops.
    whole = text.split("\n")
    at = next((k for k, line in enumerate(whole) if line.startswith("func.func")), None)
    end = next((k for k in range(len(whole) - 1, -1, -1) if whole[k] == "return"), None)
    if at is None or end is None or end < at:
        return text
    aliases = [line for line in whole[:at] if line.startswith("#")]
    lines = [*aliases, *whole[at : end + 2]]
    got = read(lines)
    if got is None:
        return text
    fn, starts, attribute_aliases = got
    spans = _line_spans(starts, lines)
    first, last = starts[0], starts[-1]
    if swapped:
        _swap_loads(fn, spans, swapped)
    counter = iter(range(1 << 30))

    def fresh() -> str:
        return f"%in_f{next(counter)}"

    generics: dict[int, _Generic] = {}
    convs: set[int] = set()  # the generics of 2-D convolutions
    for i, op in enumerate(fn.ops):
        if op.name in _WINDOWED:
            g = _generalized(op, fresh)
            if g is not None:
                spans[i] = g.text()
                if op.name in _CONV_2D:
                    convs.add(i)
        else:
            g = _generic(op, spans[i], attribute_aliases)
            if g is not None and len(set(g.ins)) < len(g.ins):
                g = _canonicalize(g)
                spans[i] = g.text()
        if g is not None:
            generics[i] = g

    erased: set[int] = set()
    if _fuse_generics(fn, spans, generics, erased, fresh):
        _erase_unread(fn, spans, erased)
    renamed: dict[str, str] = {}  # slices read as their loads
    if "tensor.extract_slice" in text:
        renamed = _slice_loads(fn, spans, generics, erased)
    if "tensor.pad" in text:
        _unpad_stores(fn, spans, erased)
        _erase_unread(fn, spans, erased)
    if _reshapable(fn, spans, generics, erased):
        live = {i: g for i, g in generics.items() if i not in erased}
        if _fold_unit_dims(fn, spans, live, erased, renamed):
            # IREE folds unit dims before it fuses: an elementwise producer
            # behind a unit reshape (a widened BatchNorm constant) fuses now
            for i, g in live.items():
                spans[i] = g.text()
            if _fuse_generics(fn, spans, live, erased, fresh):
                generics.update(live)
                live = {i: g for i, g in live.items() if i not in erased}
                _erase_unread(fn, spans, erased)
            _collapse_dims(fn, spans, live, erased)
            _strided_loads(fn, spans, {i: live[i] for i in convs if i in live}, erased)
    for i, g in generics.items():  # every generic as IREE prints it
        if i not in erased:
            spans[i] = g.text()
    body = [s for i, s in enumerate(spans) if i not in erased]
    head = [*whole[:at], *lines[len(aliases) : first - 1]]
    return "\n".join([*head, *body, *lines[last:], *whole[end + 2 :]])


def _fuse_generics(fn, spans, generics, erased: set[int], fresh) -> bool:
    """Fuse elementwise producers into their generic consumers until none
    fuses (``ElementwiseOpFusion``); False where none did."""
    users = _users(fn, spans, erased)
    fused = False
    changed = True
    while changed:
        changed = False
        for c in sorted(generics):
            while c not in erased and _fuse_one(fn, generics, users, erased, c, fresh):
                spans[c] = generics[c].text()
                changed = fused = True
    return fused


def _fuse_one(fn, generics, users, erased: set[int], c: int, fresh) -> bool:
    """Fuse one producer into generic ``c``; False where none fuses."""
    consumer = generics[c]
    for k, v in enumerate(consumer.ins):
        p = fn.defs.get(_value(v))
        if p is None or p not in generics or p in erased or users[p] != [c]:
            continue
        if consumer.ins.count(v) > 1:
            continue  # read through two maps: fusing one read leaves the other
        fused = _fuse(generics[p], consumer, k, fresh)
        if fused is None:
            continue
        generics[c] = _canonicalize(fused)
        erased.add(p)
        # what the producer read, the consumer reads now
        for j, readers in enumerate(users):
            if p in readers:
                users[j] = list(dict.fromkeys(c if u == p else u for u in readers))
        return True
    return False


def _reads(fn, spans: list[str], erased: set[int]) -> dict[int, frozenset[str]]:
    """The values each op left reads (in its text, its payload included)."""
    return {
        i: _named(s) - {_value(r) for r in fn.ops[i].results}
        for i, s in enumerate(spans)
        if i not in erased
    }


@functools.lru_cache(maxsize=512)  # a region's texts, not every module's
def _named(span: str) -> frozenset[str]:
    """The values an op's text names, less those its payload defines (its
    block arguments and values): the rewrite asks again of every text left
    each time ops are erased."""
    names = set(_SSA_RE.findall(span))
    if "\n" in span:
        names.difference_update(a or b for a, b in _DEFINED_RE.findall(span))
    return frozenset(names)


def _users(fn, spans: list[str], erased: set[int]) -> list[list[int]]:
    """The ops left that read each op's results."""
    users: list[list[int]] = [[] for _ in fn.ops]
    for i, read in _reads(fn, spans, erased).items():
        for v in read:
            j = fn.defs.get(v)
            if j is not None and i not in users[j]:
                users[j].append(i)
    return users


def _erase_unread(fn, spans: list[str], erased: set[int]) -> None:
    """Erase, repeatedly, pure ops whose results nothing left reads."""
    while True:
        read = set().union(*_reads(fn, spans, erased).values())
        dead = [
            i
            for i, op in enumerate(fn.ops)
            if i not in erased
            and op.name in _PURE
            and op.results
            and not any(_value(r) in read for r in op.results)
        ]
        if not dead:
            return
        erased.update(dead)


# Ops a region's dims may be folded and collapsed through: their types are
# all they say of shapes.
_RESHAPABLE = frozenset(
    {
        "arith.constant",
        "tensor.empty",
        "linalg.fill",
        "hal.interface.binding.subspan",
        "iree_tensor_ext.dispatch.tensor.load",
        "iree_tensor_ext.dispatch.tensor.store",
        "arith.trunci",
        "arith.extui",
        "func.return",
    }
)
_TENSOR_RE = re.compile(r"tensor<([^<>]*)>")
_ACCESS_RE = re.compile(
    r"offsets = \[([^\]]*)\], sizes = \[([^\]]*)\], strides = \[[^\]]*\]"
)
_LOW_RE = re.compile(r"low\[([^\]]*)\]")


def _reshapable(fn, spans, generics: dict[int, _Generic], erased: set[int]) -> bool:
    """Whether every op left is a generic this module reads or an op whose
    types are all it says of shapes, and every shape is static."""
    for i, op in enumerate(fn.ops):
        if i in erased:
            continue
        if any(_shape(m.group(0)) is None for m in _TENSOR_RE.finditer(spans[i])):
            return False  # a dynamic dim
        if i in generics:
            continue
        if op.name in _RESHAPES:
            if _unit_reshape(op):
                continue
            return False
        if op.name not in _RESHAPABLE:
            return False
        if op.name == "arith.constant" and "dense<[" in op.text:
            return False  # a literal's nesting is its shape
    # a payload's tensor.extract indexes the tensor's dims: none may fold
    return not any(
        1 in (_shape(m.group(0)) or ())
        for g in generics.values()
        for b in g.body
        for m in _TENSOR_RE.finditer(b)
    )


_RESHAPES = ("tensor.expand_shape", "tensor.collapse_shape")


def _unit_reshape(op: Op) -> bool:
    """A reshape that only adds or drops unit dims (none once they fold)."""
    if not op.operand_types or not op.result_types or not op.results:
        return False
    a, b = op.operand_types[0].shape, op.result_types[0].shape
    if a is None or b is None or None in a or None in b:
        return False
    return [d for d in a if d != 1] == [d for d in b if d != 1]


_SLICE_RE = re.compile(r"\[([^\]]*)\]\s*\[([^\]]*)\]\s*\[([^\]]*)\]")


def _sliced_load(span: str, offsets, sizes, strides, result: str) -> str:
    """A ``dispatch.tensor.load``'s text ``span`` reading the slice at
    ``offsets`` / ``sizes`` / ``strides`` (lists of their texts) as ``result``."""
    listed = [", ".join(part) for part in (offsets, sizes, strides)]
    access = "offsets = [{}], sizes = [{}], strides = [{}]".format(*listed)
    head, _, _ = _ACCESS_RE.sub(access, span, count=1).rpartition(" -> ")
    return f"{head} -> {result}"


def _slice_loads(
    fn, spans: list[str], generics: dict[int, _Generic], erased: set[int]
) -> dict[str, str]:
    """A ``tensor.extract_slice`` of a loaded tensor that nothing else reads:
    the load reads the slice itself (IREE folds the slice into the
    ``dispatch.tensor.load``'s offsets, sizes and strides). Its readers name
    the load's result instead of the slice's, in their text and, for
    ``generics`` (printed again from their parts at the end), in their
    inputs. Returns the names changed, slice -> load: the op records (shared
    by the regions the reader read together) keep the slice's."""
    renamed: dict[str, str] = {}
    users = _users(fn, spans, erased)
    for i, op in enumerate(fn.ops):
        if op.name != "tensor.extract_slice" or i in erased or not op.operands:
            continue
        j = fn.defs.get(_value(op.operands[0]))
        if j is None or fn.ops[j].name != "iree_tensor_ext.dispatch.tensor.load":
            continue
        if users[j] != [i] or not op.result_types or not op.results:
            continue
        m = _SLICE_RE.search(op.text)
        if m is None:
            continue
        lists = [[x.strip() for x in g.split(",")] for g in m.groups()]
        if not all(x.isdigit() for part in lists for x in part):
            continue
        spans[j] = _sliced_load(spans[j], *lists, op.result_types[0].raw)
        name = {_value(op.results[0]): _value(fn.ops[j].results[0])}
        for k in users[i]:
            spans[k] = _rename([spans[k]], name)[0]
            if k in generics:
                generics[k].ins = _rename(generics[k].ins, name)
        renamed.update(name)
        erased.add(i)
    return renamed


_STRIDED_RE = re.compile(r"(d\d+) \* (\d+)")
# 2-D convolutions whose 1x1-filter form IREE makes a contraction of a strided
# slice (``Convert1X1FilterConv2DToMatmul``).
_CONV_2D = ("linalg.conv_2d_nchw_fchw", "linalg.conv_2d_ngchw_gfchw")


def _strided_loads(fn, spans, convs: dict[int, _Generic], erased: set[int]) -> None:
    """A 1x1-filter convolution with strides, its window loops folded: its
    input reads ``oh * stride``, and IREE loads a strided slice instead (sizes
    the output's, strides the convolution's) read through the plain loop
    (``matmul_like_64x8x8x32_f32`` of a ResNet downsample: the load
    ``sizes = [32, 8, 8], strides = [1, 2, 2]`` of a ``32x16x16`` tensor, the
    input map ``(d3, d1, d2)``). Only where the input is a load that nothing
    else reads, and every other result of its map is a plain loop."""
    users = _users(fn, spans, erased)
    for i, g in convs.items():
        results = g.maps[0]
        strided = {p: _STRIDED_RE.fullmatch(r) for p, r in enumerate(results)}
        strided = {p: m for p, m in strided.items() if m is not None}
        if not strided or any(
            p not in strided and r not in g.dims for p, r in enumerate(results)
        ):
            continue
        sizes, shape = _sizes(g), _shape(g.in_types[0])
        j = fn.defs.get(_value(g.ins[0]))
        if sizes is None or not shape or j is None or users[j] != [i]:
            continue
        if fn.ops[j].name != "iree_tensor_ext.dispatch.tensor.load":
            continue
        new, steps = list(shape), [1] * len(shape)
        for p, m in strided.items():
            new[p] = sizes[g.dims.index(m.group(1))]
            steps[p] = int(m.group(2))
            results[p] = m.group(1)
        g.in_types[0] = _retype(g.in_types[0], lambda _, dims=new: dims)
        spans[j] = _sliced_load(
            spans[j], ["0"] * len(new), map(str, new), map(str, steps), g.in_types[0]
        )


def _unpad_stores(fn, spans: list[str], erased: set[int]) -> None:
    """A ``tensor.pad`` that only a store reads: the unpadded value is stored
    into the padded tensor at the pad's low offsets (IREE writes the padding
    value in a dispatch of its own)."""
    users = _users(fn, spans, erased)
    for i, op in enumerate(fn.ops):
        if op.name != "tensor.pad" or i in erased or len(users[i]) != 1:
            continue
        s = users[i][0]
        store = fn.ops[s]
        if store.name != "iree_tensor_ext.dispatch.tensor.store" or not op.operands:
            continue
        low = _LOW_RE.search(op.text)
        source = op.operand_types[0] if op.operand_types else None
        if (
            low is None
            or source is None
            or source.shape is None
            or None in source.shape
        ):
            continue
        offsets = [x.strip() for x in low.group(1).split(",")]
        if len(offsets) != len(source.shape) or not all(x.isdigit() for x in offsets):
            continue
        text = spans[s].replace(
            f"store {_value(op.results[0])},", f"store {op.operands[0]},", 1
        )
        listed = ", ".join(map(str, source.shape))
        ones = ", ".join("1" for _ in source.shape)
        access = (
            f"offsets = [{', '.join(offsets)}], sizes = [{listed}], strides = [{ones}]"
        )
        text = _ACCESS_RE.sub(access, text, count=1)
        head, sep, tail = text.rpartition(" : ")
        value_type, arrow, binding_type = tail.partition(" -> ")
        text = f"{head}{sep}{source.raw}{arrow}{binding_type.replace('writeonly:', 'readwrite:')}"
        spans[s] = text
        b = fn.defs.get(_value(store.operands[1])) if len(store.operands) > 1 else None
        if b is not None:
            spans[b] = spans[b].replace("writeonly:", "readwrite:")
        erased.add(i)


def _sizes(g: _Generic) -> list[int] | None:
    """Each loop's size, read from the operands' types."""
    sizes: dict[str, int] = {}
    for results, t in zip(g.maps, [*g.in_types, g.out_type], strict=True):
        dims = _shape(t)
        if dims is None or len(dims) != len(results):
            return None
        for r, n in zip(results, dims, strict=True):
            if r in g.dims:
                sizes.setdefault(r, n)
            elif r.isdigit() and n != 1:
                return None  # a constant index into a dim of several elements
    if any(d not in sizes for d in g.dims):
        return None
    return [sizes[d] for d in g.dims]


@functools.lru_cache(maxsize=4096)  # the same few types, asked of every op
def _shape(t: str) -> tuple[int, ...] | None:
    m = _TENSOR_RE.fullmatch(t.strip())
    if m is None:
        return None if "tensor<" in t else ()  # a scalar operand
    *dims, _ = m.group(1).split("x")
    if not all(d.isdigit() for d in dims):
        return None
    return tuple(int(d) for d in dims)


def _retype(text: str, shapes) -> str:
    """Every ``tensor<...>`` of ``text`` with its dims given by ``shapes``
    (old dims -> new dims)."""

    def sub(m: re.Match) -> str:
        *dims, element = m.group(1).split("x")
        if not all(d.isdigit() for d in dims):
            return m.group(0)  # a dynamic or encoded type: never reshaped
        new = shapes([int(d) for d in dims])
        return "tensor<" + "x".join([*map(str, new), element]) + ">"

    text = _TENSOR_RE.sub(sub, text)

    def access(m: re.Match) -> str:
        offsets = [d.strip() for d in m.group(1).split(",") if d.strip()]
        sizes = [int(d) for d in m.group(2).split(",") if d.strip()]
        new = shapes(sizes)
        kept = [k for k, d in enumerate(sizes) if d != 1]
        if new == [sizes[k] for k in kept] and len(offsets) == len(sizes):
            offsets = [offsets[k] for k in kept]  # unit dims dropped
        else:
            offsets = ["0" for _ in new]
        ones = ", ".join("1" for _ in new)
        listed = ", ".join(map(str, new))
        return (
            f"offsets = [{', '.join(offsets)}], sizes = [{listed}], strides = [{ones}]"
        )

    return _ACCESS_RE.sub(access, text)


def _fold_unit_dims(
    fn, spans, generics: dict[int, _Generic], erased, renamed: dict | None = None
) -> bool:
    """Drop every unit dim of the region's tensors and the generics' unit
    loops (``FoldUnitExtentDims``); False, and nothing changed, where a
    loop's size is unknown. ``renamed``: values the rewrite renamed since
    the ops were read (:func:`_slice_loads`), old -> new."""
    sizes = {i: _sizes(g) for i, g in generics.items()}
    if any(v is None for v in sizes.values()):
        return False

    def unitless(dims: list[int]) -> list[int]:
        return [d for d in dims if d != 1]

    alias = {}
    for i, op in enumerate(fn.ops):
        if i not in erased and op.name in _RESHAPES and _unit_reshape(op):
            source = op.operands[0]
            alias[_value(op.results[0])] = (renamed or {}).get(source, source)
            erased.add(i)
    while any(v in alias for v in alias.values()):
        alias = {k: alias.get(v, v) for k, v in alias.items()}
    for g in generics.values():
        g.ins = [alias.get(v, v) for v in g.ins]
        g.out = alias.get(g.out, g.out)
    for i in range(len(spans)):
        if i not in erased and i not in generics and alias:
            spans[i] = _rename([spans[i]], alias)[0]

    for i, g in generics.items():
        keep = [d for d, n in zip(g.dims, sizes[i], strict=True) if n != 1]
        names = {d: f"d{k}" for k, d in enumerate(keep)}
        unit = {k for k, n in enumerate(sizes[i]) if n == 1}
        g.iterators = [it for k, it in enumerate(g.iterators) if k not in unit]
        gone = set(g.dims) - set(keep)
        g.maps = [
            [
                _fold_expr(r, gone, names)
                for r, n in zip(results, _shape(t) or [], strict=True)
                if n != 1
            ]
            for results, t in zip(g.maps, [*g.in_types, g.out_type], strict=True)
        ]
        g.dims = [names[d] for d in keep]
        g.body = _reindex(
            g.body,
            {
                k: None if k in unit else sum(1 for j in range(k) if j not in unit)
                for k in range(len(sizes[i]))
            },
        )
        g.in_types = [_retype(t, unitless) for t in g.in_types]
        g.out_type = _retype(g.out_type, unitless)
        g.body = [_retype(b, unitless) for b in g.body]
    for i in range(len(spans)):
        if i not in erased and i not in generics:
            spans[i] = _retype(spans[i], unitless)
    return True


def _fold_expr(expr: str, gone: set[str], names: dict[str, str]) -> str:
    """A map result with the loops ``gone`` (unit loops) at 0 and the others
    renamed."""
    if expr in names:
        return names[expr]
    terms = []
    for term in expr.split(" + "):
        dims = _DIM_RE.findall(term)
        if dims and dims[0] in gone:
            continue
        terms.append(_DIM_RE.sub(lambda m: names.get(m.group(0), m.group(0)), term))
    constants = [t for t in terms if t.isdigit()]
    terms = [t for t in terms if not t.isdigit()]
    total = sum(int(t) for t in constants)
    if total or not terms:
        terms.append(str(total))
    return " + ".join(terms)


def _reindex(body: list[str], to: dict[int, int | None]) -> list[str]:
    """Payload lines with ``linalg.index k`` read as loop ``to[k]``, a
    constant 0 where that loop is gone."""

    def sub(line: str) -> str:
        m = _INDEX_RE.search(line)
        if m is None:
            return line
        k = to.get(int(m.group(1)))
        if k is None:
            return line[: m.start()] + "arith.constant 0" + line[m.end() :]
        return line[: m.start()] + f"linalg.index {k}" + line[m.end() :]

    return [sub(b) for b in body]


def _collapse_dims(fn, spans, generics: dict[int, _Generic], erased) -> None:
    """Merge runs of loops that every op reads together, in order, as one
    loop (``CollapseDimensions``): two loops stay apart where their iterator
    types differ, where an operand reads one and not the other or not
    next to each other, and where a tensor that two ops share keeps them
    apart in either."""
    if any(_INDEX_RE.search(b) for g in generics.values() for b in g.body):
        return  # a payload reading its loop indices would need them split
    if any(
        any(x.strip() != "0" for x in m.group(1).split(","))
        for i, span in enumerate(spans)
        if i not in erased
        for m in _ACCESS_RE.finditer(span)
    ):
        return  # a padded store: its tensor's dims differ from the value's
    parent: dict[str, str] = {}

    def find(v: str) -> str:
        while parent.get(v, v) != v:
            v = parent[v]
        return v

    def link(a: str, b: str) -> None:
        ra, rb = find(_value(a)), find(_value(b))
        if ra != rb:
            parent[ra] = rb

    primary: dict[int, str] = {}
    for i, op in enumerate(fn.ops):
        if i in erased or i in generics or op.name == "func.return":
            continue
        if op.name == "iree_tensor_ext.dispatch.tensor.store":
            if len(op.operands) >= 2:
                link(op.operands[0], op.operands[1])
                primary[i] = _value(op.operands[0])
            continue
        if not op.results:
            continue
        primary[i] = _value(op.results[0])
        if op.name in ("arith.trunci", "arith.extui", "linalg.fill") or (
            op.name == "iree_tensor_ext.dispatch.tensor.load"
        ):
            for v in op.operands:
                if v.startswith("%") and not v.startswith("%c"):
                    link(op.results[0], v)
    reads: dict[int, list[tuple[str, list[str]]]] = {}
    cuts: dict[int, set[int]] = {}
    for i, g in generics.items():
        link(g.result, g.out)
        pairs = list(zip([*g.ins, g.out], g.maps, strict=True))
        pairs.append((g.result, g.maps[-1]))
        reads[i] = [(find(_value(v)), m) for v, m in pairs if _shape_of(g, v)]
        n = len(g.dims)
        cut = set()
        for k in range(n - 1):
            a, b = g.dims[k], g.dims[k + 1]
            if g.iterators[k] != g.iterators[k + 1]:
                cut.add(k)
            for m in g.maps:
                if (a in m) != (b in m) or (a in m and m.index(b) != m.index(a) + 1):
                    cut.add(k)
        # a loop read in a sum (a convolution's window) stays a loop of its own
        for m in g.maps:
            for r in m:
                if r not in g.dims:
                    for d in _DIM_RE.findall(r):
                        k = g.dims.index(d)
                        cut.update({k - 1, k} & set(range(n - 1)))
        cuts[i] = cut
    tensor_cuts: dict[str, set[int]] = {}
    changed = True
    while changed:
        changed = False
        for i, g in generics.items():
            at = {d: k for k, d in enumerate(g.dims)}
            for v, m in reads[i]:
                have = tensor_cuts.setdefault(v, set())
                for p in range(len(m) - 1):
                    a, b = at.get(m[p], -2), at.get(m[p + 1], -2)
                    if b != a + 1 or a < 0 or a in cuts[i]:
                        if p not in have:
                            have.add(p)
                            changed = True
                    elif p in have and a not in cuts[i]:
                        cuts[i].add(a)
                        changed = True
    if all(
        len(c) == len(g.dims) - 1 for c, g in ((cuts[i], generics[i]) for i in generics)
    ):
        return  # nothing collapses
    for i, g in generics.items():
        groups = _groups(len(g.dims), cuts[i])
        which = {g.dims[k]: n for n, group in enumerate(groups) for k in group}
        g.maps = [
            list(
                dict.fromkeys(
                    f"d{which[r]}"
                    if r in which
                    else _DIM_RE.sub(functools.partial(_group_dim, which), r)
                    for r in m
                )
            )
            for m in g.maps
        ]
        g.iterators = [g.iterators[group[0]] for group in groups]
        g.dims = [f"d{n}" for n in range(len(groups))]
        g.in_types = [
            _merge_type(t, tensor_cuts.get(find(_value(v)), set()))
            for v, t in zip(g.ins, g.in_types, strict=True)
        ]
        g.out_type = _merge_type(
            g.out_type, tensor_cuts.get(find(_value(g.out)), set())
        )
    for i, v in primary.items():
        cut = tensor_cuts.get(find(v))
        spans[i] = _retype(spans[i], functools.partial(_merged, cut=cut))


def _group_dim(which: dict[str, int], m: re.Match) -> str:
    return f"d{which[m.group(0)]}"


def _shape_of(g: _Generic, v: str) -> bool:
    """Whether operand ``v`` of ``g`` is a tensor (not a scalar)."""
    values = [*g.ins, g.out, g.result]
    types = dict(zip(values, [*g.in_types, g.out_type, g.out_type], strict=True))
    return "tensor<" in types.get(v, "")


def _groups(n: int, cut: set[int]) -> list[list[int]]:
    groups: list[list[int]] = [[]]
    for k in range(n):
        groups[-1].append(k)
        if k in cut and k < n - 1:
            groups.append([])
    return [g for g in groups if g]


def _merged(dims: list[int], cut: set[int] | None) -> list[int]:
    """``dims`` with the runs between ``cut`` positions multiplied out (all
    merged where nothing cuts them: a tensor no generic reads)."""
    if cut is None:
        return dims
    out = []
    for group in _groups(len(dims), cut):
        size = 1
        for k in group:
            size *= dims[k]
        out.append(size)
    return out


def _merge_type(t: str, cut: set[int]) -> str:
    return _retype(t, lambda dims: _merged(dims, cut))


_INS_RE = re.compile(r"ins\(([^:()]*):([^()]*)\)")


def _matmul_maps(rank: int) -> str:
    """A matmul's indexing maps reading its right operand as ``[..., N, K]``."""
    batch = [f"d{k}" for k in range(rank - 2)]
    m, n, k = (f"d{len(batch) + j}" for j in range(3))
    head = ", ".join([*batch, m, n, k])
    maps = [[*batch, m, k], [*batch, n, k], [*batch, m, n]]
    listed = ", ".join(f"affine_map<({head}) -> ({', '.join(r)})>" for r in maps)
    return f"indexing_maps = [{listed}]"


def _swap_loads(fn, spans: list[str], swapped: dict) -> None:
    """Bind each swapped value's source (its two innermost dims swapped back)
    and move the transpose into the matmuls that read it."""

    def swap(dims: list[int]) -> list[int]:
        return [*dims[:-2], dims[-1], dims[-2]] if len(dims) >= 2 else dims

    for i, op in enumerate(fn.ops):
        if op.name == "iree_tensor_ext.dispatch.tensor.load":
            v = _value(op.results[0]) if op.results else ""
            if v in swapped:
                spans[i] = _retype(spans[i], swap)
                j = fn.defs.get(_value(op.operands[0])) if op.operands else None
                if j is not None:
                    spans[j] = _retype(spans[j], swap)
        elif op.name in ("linalg.matmul", "linalg.batch_matmul"):
            if len(op.operands) < 2 or _value(op.operands[1]) not in swapped:
                continue
            m = _INS_RE.search(spans[i])
            if m is None or "indexing_maps" in spans[i]:
                continue
            types = [t.strip() for t in m.group(2).split(",")]
            if len(types) != 2:
                continue
            types[1] = _retype(types[1], swap)
            rank = 2 if op.name == "linalg.matmul" else 3
            head, _, tail = spans[i].partition(op.name)
            tail = tail.replace(m.group(0), f"ins({m.group(1)}: {', '.join(types)})", 1)
            spans[i] = f"{head}{op.name} {_matmul_maps(rank)}{tail}"


# Convolutions and pools IREE writes as generics (``GeneralizeLinalgNamedOps``):
# loops, then the input's, the filter's (window's) and the output's dims; a
# pair ``(o, k)`` reads ``o * stride + k * dilation``; loops the output does
# not read are reductions.
_POOL = (
    "n c oh ow kh kw",
    ["n", "c", ("oh", "kh"), ("ow", "kw")],
    "kh kw",
    "n c oh ow",
)
_WINDOWED = {
    "linalg.conv_2d_nchw_fchw": (
        "n f oh ow c kh kw",
        ["n", "c", ("oh", "kh"), ("ow", "kw")],
        "f c kh kw",
        "n f oh ow",
    ),
    "linalg.depthwise_conv_2d_nchw_chw": (
        "n oh ow c kh kw",
        ["n", "c", ("oh", "kh"), ("ow", "kw")],
        "c kh kw",
        "n c oh ow",
    ),
    "linalg.conv_2d_ngchw_gfchw": (
        "n g fg oh ow c kh kw",
        ["n", "g", "c", ("oh", "kh"), ("ow", "kw")],
        "g fg c kh kw",
        "n g fg oh ow",
    ),
    "linalg.conv_1d_ncw_fcw": (
        "n f ow c kw",
        ["n", "c", ("ow", "kw")],
        "f c kw",
        "n f ow",
    ),
    "linalg.pooling_nchw_max": _POOL,
    "linalg.pooling_nchw_sum": _POOL,
}
# Words of the ops this module rewrites: a region without them is as IREE has it.
_REWRITTEN = ("linalg.generic", "tensor.extract_slice", *_WINDOWED)
_PAIR_RE = re.compile(r"(strides|dilations)\s*=\s*dense<([^>]*)>")


def _generalized(op: Op, fresh) -> _Generic | None:
    """A named convolution or pool as the ``linalg.generic`` IREE makes of it."""
    loops, reads, window, writes = _WINDOWED[op.name]
    names = loops.split()
    if len(op.operands) != 3 or len(op.operand_types) != 3 or len(op.results) != 1:
        return None
    types = [t.raw for t in op.operand_types]
    elements = [t.element for t in op.operand_types]
    if not all(types) or not all(elements):
        return None
    steps = {"strides": [1], "dilations": [1]}
    for m in _PAIR_RE.finditer(op.text):
        values = m.group(2).strip("[] ").split(",")
        if not all(v.strip().isdigit() for v in values):
            return None
        steps[m.group(1)] = [int(v) for v in values]
    dim = {name: f"d{k}" for k, name in enumerate(names)}
    pairs = [r for r in reads if isinstance(r, tuple)]

    def step(kind: str, k: int) -> int:
        got = steps[kind]
        return got[k] if k < len(got) else got[-1]

    def read(r) -> str:
        if not isinstance(r, tuple):
            return dim[r]
        k = pairs.index(r)
        s, d = step("strides", k), step("dilations", k)
        o = dim[r[0]] if s == 1 else f"{dim[r[0]]} * {s}"
        w = dim[r[1]] if d == 1 else f"{dim[r[1]]} * {d}"
        return f"{o} + {w}"

    out = writes.split()
    maps = [
        [read(r) for r in reads],
        [dim[r] for r in window.split()],
        [dim[r] for r in out],
    ]
    args = [fresh(), fresh(), fresh()]
    a, b, acc = elements
    body = []
    x, y = args[0], args[1]
    floating = acc.startswith(("f", "bf"))
    if a != acc:
        body.append(f"{args[0]}_x = {_extend(a, acc)} {x} : {a} to {acc}")
        x = f"{args[0]}_x"
    pool = op.name.startswith("linalg.pooling")
    if not pool and b != acc:
        body.append(f"{args[1]}_x = {_extend(b, acc)} {y} : {b} to {acc}")
        y = f"{args[1]}_x"
    add = "arith.addf" if floating else "arith.addi"
    if op.name == "linalg.pooling_nchw_max":
        top = "arith.maximumf" if floating else "arith.maxsi"
        body.append(f"{args[2]}_y = {top} {args[2]}, {x} : {acc}")
    elif pool:
        body.append(f"{args[2]}_y = {add} {args[2]}, {x} : {acc}")
    else:
        mul = "arith.mulf" if floating else "arith.muli"
        body.append(f"{args[2]}_m = {mul} {x}, {y} : {acc}")
        body.append(f"{args[2]}_y = {add} {args[2]}, {args[2]}_m : {acc}")
    return _Generic(
        result=op.results[0],
        ins=list(op.operands[:2]),
        in_types=types[:2],
        maps=maps,
        dims=[dim[n] for n in names],
        out=op.operands[2],
        out_type=types[2],
        iterators=["parallel" if n in out else "reduction" for n in names],
        args=args,
        arg_types=elements,
        body=body,
        yielded=f"{args[2]}_y",
        yield_type=acc,
    )


def _extend(source: str, target: str) -> str:
    if target.startswith(("f", "bf")):
        return "arith.extf" if source.startswith(("f", "bf")) else "arith.sitofp"
    return "arith.extsi"
