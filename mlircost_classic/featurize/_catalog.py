"""The op catalog: which family an op belongs to and how to cost it.

The catalog is a folder of TOML files, one per dialect, shipped as the package
``mlircost_classic.catalog`` (the top-level ``features/`` folder of the
repository). A file looks like::

    dialect = "linalg"                 # the text before the first dot of an op name
    description = "..."                # optional
    default_family = "other"           # optional; family of ops the file does not list

    [ops]
    matmul = {family = "matmul", flops = {rule = "matmul"}}
    conv_2d_nchw_fchw = {family = "conv", flops = {rule = "conv", filter_out_dims = [0]}}
    fill = {family = "data_movement"}
    yield = {family = "control", bytes = {rule = "none"}}

Op keys are written without the dialect prefix. A name not listed is looked up
again without its last dotted component, so ``torch.aten.add.Tensor`` finds
``"aten.add"``. An op of a dialect no file describes gets family ``unknown``.

Families are a fixed vocabulary (:data:`FAMILIES`) because the featurizers turn
them into columns. FLOP and byte rules are named, never evaluated expressions;
the vocabulary (parameters in brackets, defaults after ``=``) is:

FLOP rules (``flops = {rule = ...}``)
    ``none``
        no arithmetic.
    ``elementwise`` [per_element=1]
        ``per_element * numel(output)``.
    ``reduction`` [per_element=1, operand=0]
        ``per_element * numel(operands[operand])``.
    ``matmul`` [k_operand=0, k_dims=[-1], per_mac=2]
        ``per_mac * numel(output) * prod(operands[k_operand].shape[k_dims])``;
        an ``indexing_maps`` attribute switches to the ``generic`` rule.
    ``dot_general`` [per_mac=2]
        as ``matmul`` with K from ``lhs_contracting_dimensions`` /
        ``contracting_dims`` (StableHLO).
    ``conv`` [filter_operand=1, filter_out_dims, per_mac=2, stride_operand,
    dilation_operand, groups_operand]
        ``per_mac * numel(output) * prod(filter) / prod(filter[filter_out_dims])``:
        every filter dimension that does not index output channels is reduced
        over. Strides and dilations shape the output, groups the filter, so the
        count is exact; the ``*_operand`` parameters name operands holding those
        values as SSA lists (torch), read for the convolution features.
    ``conv_dim_numbers`` [per_mac=2]
        ``conv`` with the kernel's output-feature dimension read from the
        StableHLO ``dim_numbers`` attribute.
    ``transpose_conv`` [filter_operand=1, filter_in_dims, per_mac=2]
        ``per_mac * numel(input) * prod(filter) / prod(filter[filter_in_dims])``.
    ``pool`` [per_element=1, window_operand, window_attr, window_list_operand]
        ``per_element * numel(output) * window``; the window is the element
        count of an operand (linalg), an integer-list attribute (tosa
        ``kernel``, stablehlo ``window_dimensions``) or an SSA list operand
        (torch ``kernel_size``).
    ``generic`` [per_iteration]
        iteration-domain size times work per iteration. The domain comes from
        ``indexing_maps`` and operand shapes, else from the largest operand or
        result; the work is ``per_iteration`` or the number of ops in the body.
    ``attention`` [per_mac=2]
        ``per_mac * S * (numel(query) + numel(output))`` with ``S`` the key
        length (``key.shape[-2]``).

Byte rules (``bytes = {rule = ...}``); the default is ``operands_results``
    ``operands_results``: static sizes of all operand and result types.
    ``operands``, ``results``: only those.
    ``operand`` [index=0]: one operand.
    ``none``: nothing (views, control flow, metadata).

An op without a ``flops`` entry gets the family's default: ``elementwise``
for the elementwise family, ``reduction`` for reductions, ``none`` otherwise.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "FAMILIES",
    "FLOP_RULES",
    "BYTE_RULES",
    "Catalog",
    "CatalogError",
    "OpSpec",
    "Rule",
    "load_catalog",
]

FAMILIES = (
    "matmul",
    "batch_matmul",
    "conv",
    "pool",
    "elementwise",
    "reduction",
    "generic",
    "data_movement",
    "constant",
    "memory",
    "control",
    "call",
    "structure",
    "other",
    "unknown",
)

# Families whose regions are a per-element payload (the body of linalg.generic,
# stablehlo.reduce, ...): the op's own rule already counts that work, so body
# ops are not counted again.
PAYLOAD_FAMILIES = frozenset(
    {
        "matmul",
        "batch_matmul",
        "conv",
        "pool",
        "elementwise",
        "reduction",
        "generic",
        "data_movement",
    }
)

_INT = (int,)
_INT_LIST = (list,)
_STR = (str,)

# rule name -> {parameter name: accepted Python types of its TOML value}
FLOP_RULES: dict[str, dict[str, tuple[type, ...]]] = {
    "none": {},
    "elementwise": {"per_element": (int, float)},
    "reduction": {"per_element": (int, float), "operand": _INT},
    "matmul": {"k_operand": _INT, "k_dims": _INT_LIST, "per_mac": (int, float)},
    "dot_general": {"per_mac": (int, float)},
    "conv": {
        "filter_operand": _INT,
        "filter_out_dims": _INT_LIST,
        "per_mac": (int, float),
        "stride_operand": _INT,
        "dilation_operand": _INT,
        "groups_operand": _INT,
    },
    "conv_dim_numbers": {"per_mac": (int, float)},
    "transpose_conv": {
        "filter_operand": _INT,
        "filter_in_dims": _INT_LIST,
        "per_mac": (int, float),
    },
    "pool": {
        "per_element": (int, float),
        "window_operand": _INT,
        "window_attr": _STR,
        "window_list_operand": _INT,
    },
    "generic": {"per_iteration": (int, float)},
    "attention": {"per_mac": (int, float)},
}

BYTE_RULES: dict[str, dict[str, tuple[type, ...]]] = {
    "operands_results": {},
    "operands": {},
    "results": {},
    "operand": {"index": _INT},
    "none": {},
}

_REQUIRED_PARAMS = {
    ("conv", "filter_out_dims"),
    ("transpose_conv", "filter_in_dims"),
}


@dataclass(frozen=True)
class Rule:
    """A named FLOP or byte rule with its parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OpSpec:
    """What the catalog knows about one op name."""

    family: str
    flops: Rule
    bytes: Rule


class CatalogError(ValueError):
    """A catalog file that does not follow the format."""


_DEFAULT_BYTES = Rule("operands_results")
_UNKNOWN = OpSpec("unknown", Rule("none"), _DEFAULT_BYTES)


def _default_flops(family: str) -> Rule:
    if family == "elementwise":
        return Rule("elementwise")
    if family == "reduction":
        return Rule("reduction")
    return Rule("none")


@dataclass(frozen=True)
class _Dialect:
    name: str
    default_family: str
    ops: Mapping[str, OpSpec]
    source: str


class Catalog:
    """Op name -> :class:`OpSpec`, built from catalog TOML files.

    Use :func:`load_catalog` to build one.

    Parameters
    ----------
    dialects : mapping of str -> _Dialect
        Parsed files by dialect name.
    """

    def __init__(self, dialects: Mapping[str, _Dialect]):
        self.dialects = dict(dialects)
        self._cache: dict[str, OpSpec] = {}

    def __getstate__(self):
        return {"dialects": self.dialects}

    def __setstate__(self, state):
        self.__init__(state["dialects"])

    def lookup(self, name: str) -> OpSpec:
        """Spec of op ``name`` (``"linalg.matmul"``); family ``unknown`` if no file knows it."""
        spec = self._cache.get(name)
        if spec is None:
            spec = self._cache[name] = self._lookup(name)
        return spec

    def family(self, name: str) -> str:
        """Family of op ``name``."""
        return self.lookup(name).family

    def _lookup(self, name: str) -> OpSpec:
        dialect, _, rest = name.partition(".")
        entry = self.dialects.get(dialect)
        if entry is None:
            return _UNKNOWN
        while rest:
            spec = entry.ops.get(rest)
            if spec is not None:
                return spec
            rest = rest.rpartition(".")[0]
        family = entry.default_family
        return OpSpec(family, _default_flops(family), _DEFAULT_BYTES)

    def __repr__(self) -> str:
        return f"Catalog(dialects={sorted(self.dialects)})"


def _parse_rule(value: Any, vocabulary: dict, what: str, where: str) -> Rule:
    if not isinstance(value, dict) or "rule" not in value:
        raise CatalogError(f"{where}: {what} must be a table with a 'rule' key")
    params = dict(value)
    name = params.pop("rule")
    if name not in vocabulary:
        raise CatalogError(
            f"{where}: unknown {what} rule {name!r}; valid rules: {sorted(vocabulary)}"
        )
    allowed = vocabulary[name]
    for key, val in params.items():
        if key not in allowed:
            raise CatalogError(
                f"{where}: {what} rule {name!r} has no parameter {key!r}; "
                f"valid parameters: {sorted(allowed)}"
            )
        types = allowed[key]
        if isinstance(val, bool) or not isinstance(val, types):
            raise CatalogError(
                f"{where}: {what} rule {name!r} parameter {key!r} must be of type "
                f"{'/'.join(t.__name__ for t in types)}, got {val!r}"
            )
        if types is _INT_LIST and not all(
            isinstance(v, int) and not isinstance(v, bool) for v in val
        ):
            raise CatalogError(
                f"{where}: {what} rule {name!r} parameter {key!r} must be a list "
                f"of integers, got {val!r}"
            )
    for rule, key in _REQUIRED_PARAMS:
        if name == rule and key not in params:
            raise CatalogError(f"{where}: {what} rule {name!r} needs {key!r}")
    return Rule(name, params)


def _check_family(family: Any, where: str) -> str:
    if family not in FAMILIES:
        raise CatalogError(
            f"{where}: unknown family {family!r}; valid families: {list(FAMILIES)}"
        )
    return family


def _parse_file(text: str, source: str) -> _Dialect:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: not valid TOML: {exc}") from exc
    unknown = set(data) - {"dialect", "description", "default_family", "ops"}
    if unknown:
        raise CatalogError(f"{source}: unknown top-level keys {sorted(unknown)}")
    dialect = data.get("dialect")
    if not isinstance(dialect, str) or not dialect or "." in dialect:
        raise CatalogError(
            f"{source}: 'dialect' must be a dialect name, got {dialect!r}"
        )
    default_family = _check_family(
        data.get("default_family", "other"), f"{source}: default_family"
    )
    ops_table = data.get("ops", {})
    if not isinstance(ops_table, dict):
        raise CatalogError(f"{source}: 'ops' must be a table")
    ops = {}
    for key, entry in ops_table.items():
        where = f"{source}: op {dialect}.{key}"
        if not isinstance(entry, dict):
            raise CatalogError(f"{where}: must be a table")
        extra = set(entry) - {"family", "flops", "bytes"}
        if extra:
            raise CatalogError(
                f"{where}: unknown keys {sorted(extra)}; valid keys: "
                "['bytes', 'family', 'flops']"
            )
        if "family" not in entry:
            raise CatalogError(f"{where}: missing 'family'")
        family = _check_family(entry["family"], where)
        flops = (
            _parse_rule(entry["flops"], FLOP_RULES, "flops", where)
            if "flops" in entry
            else _default_flops(family)
        )
        nbytes = (
            _parse_rule(entry["bytes"], BYTE_RULES, "bytes", where)
            if "bytes" in entry
            else _DEFAULT_BYTES
        )
        ops[key] = OpSpec(family, flops, nbytes)
    return _Dialect(dialect, default_family, ops, source)


def _builtin_files() -> list[tuple[str, str]]:
    root = importlib.resources.files("mlircost_classic.catalog")
    return sorted(
        (f"mlircost_classic.catalog/{item.name}", item.read_text(encoding="utf-8"))
        for item in root.iterdir()
        if item.name.endswith(".toml")
    )


def _user_files(path: str | os.PathLike) -> list[tuple[str, str]]:
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.toml"))
    elif path.is_file():
        files = [path]
    else:
        raise CatalogError(f"{path}: catalog path does not exist")
    return [(str(f), f.read_text(encoding="utf-8")) for f in files]


def _build(files: Iterable[tuple[str, str]]) -> Catalog:
    dialects: dict[str, _Dialect] = {}
    for source, text in files:
        parsed = _parse_file(text, source)
        # A later file for the same dialect extends and overrides the earlier one,
        # so a user file can refine the shipped catalog.
        previous = dialects.get(parsed.name)
        if previous is not None:
            parsed = _Dialect(
                parsed.name,
                parsed.default_family,
                {**previous.ops, **parsed.ops},
                f"{previous.source}, {source}",
            )
        dialects[parsed.name] = parsed
    return Catalog(dialects)


@functools.lru_cache(maxsize=1)
def _builtin_catalog() -> Catalog:
    return _build(_builtin_files())


def load_catalog(
    extra: str | os.PathLike | Iterable[str | os.PathLike] | None = None,
    *,
    builtin: bool = True,
) -> Catalog:
    """Load the shipped catalog, optionally extended by user TOML files.

    Parameters
    ----------
    extra : path or list of paths, optional
        TOML files, or folders of them, read after the shipped files. A file for
        a dialect already known adds ops to it and overrides entries and its
        default family.
    builtin : bool, default=True
        Whether to start from the shipped files.

    Returns
    -------
    Catalog

    Raises
    ------
    CatalogError
        If a file is not valid TOML or does not follow the format; the message
        names the file.

    Examples
    --------
    >>> from mlircost_classic.featurize import load_catalog
    >>> catalog = load_catalog()
    >>> catalog.family("linalg.matmul"), catalog.family("mydialect.op")
    ('matmul', 'unknown')
    """
    if extra is None and builtin:
        return _builtin_catalog()
    if extra is None:
        paths: list = []
    elif isinstance(extra, (str, os.PathLike)):
        paths = [extra]
    else:
        paths = list(extra)
    files = _builtin_files() if builtin else []
    for path in paths:
        files.extend(_user_files(path))
    return _build(files)
