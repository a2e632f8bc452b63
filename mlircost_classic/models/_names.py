"""Feature names a reader understands, for reports and explanations.

:class:`~mlircost_classic.MLIRFeaturizer` names its columns by part and feature
(``opcodes__op linalg.matmul``, ``ngrams__ngram linalg.fill linalg.matmul``,
``shapes__matmul FLOPs``): exact, but written for code. The functions here turn
them into short phrases (``op linalg.matmul count``,
``op pair linalg.fill → linalg.matmul (tf-idf)``, ``estimated matmul FLOPs``)
without changing their meaning, so that importance tables and plots can be
read without knowing the featurizers.
"""

from __future__ import annotations

__all__ = ["readable_feature_name", "readable_feature_names"]

_PARTS = ("opcodes", "ngrams", "shapes")

# Shape features whose name alone is too terse (see SHAPE_FEATURES); the ones
# that follow a pattern (``bytes f32``, ``ops conv``, ``conv FLOPs``, ``bytes
# moved pool``) are handled in _shape_name.
_SHAPE_DESCRIPTIONS = {
    "ops": "ops (total)",
    "functions": "functions",
    "regions": "regions",
    "blocks": "blocks",
    "max region depth": "deepest region nesting",
    "loops": "loops",
    "loop nest depth": "deepest loop nest",
    "loops with constant trip count": "loops with a constant trip count",
    "loop trip count max": "largest constant loop trip count",
    "loop iterations max": "most iterations of one loop nest",
    "shaped values": "tensor / memref values",
    "rank max": "largest rank",
    "rank mean": "mean rank",
    "dynamic dims": "dynamic dimensions",
    "dynamic values": "values with a dynamic dimension",
    "elements total": "elements over all values",
    "largest tensor elements": "elements of the largest tensor",
    "largest tensor bytes": "bytes of the largest tensor",
    "bytes total": "bytes over all values",
    "FLOPs total": "estimated FLOPs (total)",
    "bytes moved total": "estimated bytes moved (total)",
    "arithmetic intensity": "arithmetic intensity (FLOPs / byte)",
    "ops with unknown FLOPs": "ops with unknown FLOPs",
    "conv stride max": "largest conv stride",
    "conv dilation max": "largest conv dilation",
    "conv groups max": "most conv groups",
    "strided convs": "strided convs",
    "dilated convs": "dilated convs",
    "grouped convs": "grouped convs",
    "compute ops": "ops with FLOPs",
    "FLOPs per output element max": "most FLOPs per output element (any op)",
    "payload ops max": "most scalar ops in one payload region",
    "reduction loops max": "most reduction loops of one op",
    "heaviest op FLOPs share": "share of all FLOPs in the heaviest op",
    "heaviest op FLOPs per output element": "heaviest op: FLOPs per output element",
    "heaviest op payload ops": "heaviest op: scalar ops in its payload",
    "heaviest op loops": "heaviest op: loops",
    "heaviest op reduction loops": "heaviest op: reduction loops",
    "heaviest op permuted operands": "heaviest op: operands read permuted",
    "heaviest op operands": "heaviest op: operands",
    "heaviest op output rank": "heaviest op: output rank",
    "heaviest op output elements": "heaviest op: output elements",
    "heaviest op innermost dim": "heaviest op: innermost output dimension",
    "heaviest op innermost power of two": (
        "heaviest op: log2 of the power of two in its innermost dimension"
    ),
    "heaviest op output bits": "heaviest op: output element bits",
    "heaviest op narrowest operand bits": "heaviest op: narrowest operand bits",
}


def _shape_name(feature: str) -> str:
    if feature.startswith("log1p "):
        return f"log(1 + {_shape_name(feature[len('log1p ') :])})"
    if feature in _SHAPE_DESCRIPTIONS:
        return _SHAPE_DESCRIPTIONS[feature]
    if feature.startswith("bytes moved "):
        return f"estimated bytes moved by {feature[len('bytes moved ') :]} ops"
    if feature.startswith("bytes "):
        return f"bytes of {feature[len('bytes ') :]} values"
    if feature.startswith("ops "):
        return f"{feature[len('ops ') :]} ops"
    if feature.endswith(" FLOPs"):
        return f"estimated {feature}"
    return feature


def _ngram_name(feature: str) -> str:
    ops = feature[len("ngram ") :].split(" ")
    if len(ops) == 1:
        return f"op {ops[0]} (tf-idf)"
    kind = "pair" if len(ops) == 2 else "sequence"
    return f"op {kind} {' → '.join(ops)} (tf-idf)"


def readable_feature_name(name: str) -> str:
    """A short description of a featurizer column, for people.

    Works on the names of :class:`~mlircost_classic.MLIRFeaturizer` (with the
    ``part__`` prefix) and on those of its parts used alone. A name it does not
    recognise comes back unchanged, so the result is never less informative
    than the input.

    Parameters
    ----------
    name : str
        A name from ``get_feature_names_out()``.

    Returns
    -------
    str

    Examples
    --------
    >>> readable_feature_name("opcodes__op linalg.matmul")
    'op linalg.matmul count'
    >>> readable_feature_name("ngrams__ngram linalg.fill linalg.matmul")
    'op pair linalg.fill → linalg.matmul (tf-idf)'
    >>> readable_feature_name("shapes__log1p matmul FLOPs")
    'log(1 + estimated matmul FLOPs)'
    >>> readable_feature_name("shapes__bytes moved conv")
    'estimated bytes moved by conv ops'
    >>> readable_feature_name("composed nvidia_sm80.registers")
    'log(1 + composed nvidia_sm80.registers from its dispatches)'
    """
    if name.startswith("composed ") and "__" not in name:
        # StackedFeaturizer: log1p of the kernels model's aggregate over the
        # module's dispatch regions.
        return f"log(1 + {name} from its dispatches)"
    part, sep, feature = name.partition("__")
    if not sep or part not in _PARTS:
        part, feature = None, name
    if feature == "parse_error":
        return "unreadable MLIR (parse error)"
    if part in ("opcodes", None) and feature.startswith("op "):
        op = feature[len("op ") :]
        return (
            "ops unseen in training (count)" if op == "<unseen>" else f"op {op} count"
        )
    if part in ("opcodes", None) and feature.startswith("dialect "):
        dialect = feature[len("dialect ") :]
        if dialect == "<unseen>":
            return "ops of dialects unseen in training (count)"
        return f"{dialect} dialect ops (count)"
    if part in ("ngrams", None) and feature.startswith("ngram "):
        return _ngram_name(feature)
    if part in ("shapes", None):
        return _shape_name(feature)
    return name


def readable_feature_names(featurizer) -> list[str]:
    """:func:`readable_feature_name` of every column of a fitted featurizer.

    Parameters
    ----------
    featurizer : fitted transformer
        Anything with ``get_feature_names_out()``, e.g. a fitted
        :class:`~mlircost_classic.MLIRFeaturizer` or ``CostModel.featurizer_``.

    Returns
    -------
    list of str
        One name per column, in column order.
    """
    return [readable_feature_name(str(n)) for n in featurizer.get_feature_names_out()]
