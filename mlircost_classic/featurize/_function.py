"""A function's top-level ops, read from a parsed module, with their texts.

Shared by the partitioner (:mod:`._partition`, which reads the module's
functions) and the rewrite of each region into IREE's dispatch form
(:mod:`._dispatch_form`, which reads the region's function).
"""

from __future__ import annotations

import re
from dataclasses import replace

from ..mlir import Op, ParsedModule, ShapedType
from ._rules import _attr

_ARG_RE = re.compile(r"(%[\w$.-]+)\s*:")
_PARALLEL_RE = re.compile(r'"(parallel|reduction)"|#linalg\.iterator_type<(\w+)>')


def _value(name: str) -> str:
    """``%5#1`` -> ``%5``: the op result a use refers to."""
    return name.partition("#")[0]


class _Ops:
    """The top-level ops of one function and the op defining each value."""

    def __init__(self, ops: list[Op]):
        self.ops = ops
        self.defs: dict[str, int] = {}
        for i, op in enumerate(ops):
            for r in op.results:
                self.defs[_value(r)] = i


class _Function(_Ops):
    """The top-level ops of one function, with def-use links."""

    def __init__(self, func: Op, ops: list[Op], bodies: list[list[Op]]):
        super().__init__(ops)
        self.bodies = bodies
        self.args = set(_ARG_RE.findall(func.text))
        self.index = {id(op): i for i, op in enumerate(ops)}
        known = self.defs.keys() | self.args
        self.uses: list[list[str]] = []
        for op, body in zip(ops, bodies, strict=True):
            # the values read, in order, once each (_value, inlined: the
            # payloads' operands are most of a module's)
            seen = dict.fromkeys([v.partition("#")[0] for v in op.operands])
            for inner in body:
                for v in inner.operands:
                    seen[v.partition("#")[0]] = None
            self.uses.append([v for v in seen if v in known])
        users: list[dict[int, None]] = [{} for _ in ops]  # ordered sets
        for i, used in enumerate(self.uses):
            for v in used:
                j = self.defs.get(v)
                if j is not None:
                    users[j][i] = None
        self.users: list[list[int]] = [list(u) for u in users]
        self.dead: set[int] = set()  # ops CSE merged into an earlier one
        self.raised: set[int] = set()  # concats raised to an elementwise op
        self.types: dict[str, ShapedType] = {}
        for op in ops:
            for r, t in zip(op.results, op.result_types, strict=False):
                self.types.setdefault(_value(r), t)
        for op in ops:
            for v, t in zip(op.operands, op.operand_types, strict=False):
                self.types.setdefault(_value(v), t)

    def producers(self, i: int) -> list[int]:
        """The ops computing the values op ``i`` reads (its body's reads
        included), in ``uses`` order; arguments are left out."""
        defs = self.defs
        return [defs[v] for v in self.uses[i] if v in defs]


def _with_result_types(op: Op) -> Op:
    """``op``, its result types read from its ``outs`` where the text leaves
    them out (``linalg.transpose``, ``broadcast``, ``reduce`` print no ``->``)."""
    n = len(op.results)
    if op.result_types or not n or not op.name.startswith("linalg."):
        return op
    if len(op.operand_types) < n:
        return op
    return replace(op, result_types=op.operand_types[-n:])


def _split_functions(
    module: ParsedModule,
) -> list[tuple[Op, list[Op], list[list[Op]]]]:
    """Each function with ops: the ``func.func`` op, its top-level ops and the
    ops nested in each of them."""
    functions = []
    func = None
    ops: list[Op] = []
    bodies: list[list[Op]] = []
    depth = None
    for op in module.ops:
        if op.name == "func.func":
            if func is not None and ops:
                functions.append((func, ops, bodies))
            func, ops, bodies, depth = op, [], [], op.depth + 1
        elif depth is not None and op.depth == depth:
            ops.append(_with_result_types(op))
            bodies.append([])
        elif depth is not None and op.depth > depth and bodies:
            bodies[-1].append(op)
    if func is not None and ops:
        functions.append((func, ops, bodies))
    return functions


def _functions(module: ParsedModule) -> list[_Function]:
    return [_Function(*parts) for parts in _split_functions(module)]


def _iterators(op: Op) -> list[str]:
    raw = _attr(op, ("iterator_types",)) or ""
    return [a or b for a, b in _PARALLEL_RE.findall(raw)]


def _spans(fn: _Ops, text_lines: list[str]) -> list[str]:
    """Each top-level op's text, with its regions, as the module writes it."""
    return _line_spans([op.line for op in fn.ops], text_lines)


def _line_spans(starts: list[int], text_lines: list[str]) -> list[str]:
    """The texts of ops starting on lines ``starts`` (1-based), each up to the
    next one (the last one line)."""
    spans = []
    for i, start in enumerate(starts):
        end = starts[i + 1] - 1 if i + 1 < len(starts) else start
        spans.append("\n".join(line.strip() for line in text_lines[start - 1 : end]))
    return spans
