"""Counts of ops per name and per dialect."""

from __future__ import annotations

from collections import Counter
from numbers import Integral

import numpy as np
from sklearn.preprocessing import normalize as _normalize_rows
from sklearn.utils._param_validation import Interval, StrOptions

from ..mlir._ir import ParsedModule
from ._base import BaseMLIRFeaturizer

__all__ = ["OpcodeCounter"]

_UNSEEN = "<unseen>"


class OpcodeCounter(BaseMLIRFeaturizer):
    """Count ops per ``dialect.op`` name and per dialect.

    The op vocabulary is learned in :meth:`fit`; ops outside it are counted in
    an ``op <unseen>`` column, and dialect columns count every op of their
    dialect, unseen ones included (dialects not seen in fit go to
    ``dialect <unseen>``). Output is dense, so ``set_output(transform="pandas")``
    works.

    Parameters
    ----------
    min_count : int, default=1
        Ops whose total count over the training documents is lower go to
        ``op <unseen>``.
    max_features : int, default=None
        Keep only the most frequent op names (ties broken by name).
    log_scale : bool, default=False
        Apply ``log1p`` to the counts.
    normalize : {"l1", "l2"}, default=None
        Scale the op block and the dialect block of each row to unit norm
        (after ``log_scale``).
    input : {"content", "filename"}, default="content"
        Whether documents are MLIR texts or file names.
    on_error : {"raise", "warn", "ignore"}, default="raise"
        What to do with unreadable documents, see :class:`BaseMLIRFeaturizer`.
    n_jobs : int, default=None
        Documents read in parallel with joblib.

    Attributes
    ----------
    vocabulary_ : dict of str -> int
        Op name -> column index.
    dialects_ : list of str
        Dialects seen in fit, in column order.
    parse_error_column_ : bool
        Whether the output ends with a ``parse_error`` column.

    Examples
    --------
    >>> from mlircost_classic.featurize import OpcodeCounter
    >>> text = '''func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
    ...   %0 = arith.addf %a, %a : tensor<4xf32>
    ...   return %0 : tensor<4xf32>
    ... }'''
    >>> counter = OpcodeCounter().fit([text])
    >>> list(counter.get_feature_names_out())
    ['op arith.addf', 'op func.func', 'op func.return', 'op <unseen>', 'dialect arith', 'dialect func', 'dialect <unseen>']
    >>> counter.transform([text]).tolist()
    [[1.0, 1.0, 1.0, 0.0, 1.0, 2.0, 0.0]]
    """

    _parameter_constraints: dict = {
        **BaseMLIRFeaturizer._parameter_constraints,
        "min_count": [Interval(Integral, 1, None, closed="left")],
        "max_features": [Interval(Integral, 1, None, closed="left"), None],
        "log_scale": ["boolean"],
        "normalize": [StrOptions({"l1", "l2"}), None],
    }

    def __init__(
        self,
        *,
        min_count=1,
        max_features=None,
        log_scale=False,
        normalize=None,
        input="content",
        on_error="raise",
        n_jobs=None,
    ):
        self.min_count = min_count
        self.max_features = max_features
        self.log_scale = log_scale
        self.normalize = normalize
        self.input = input
        self.on_error = on_error
        self.n_jobs = n_jobs

    def _fit_modules(self, modules: list[ParsedModule]) -> None:
        totals: Counter = Counter()
        dialects = set()
        for module in modules:
            for op in module.ops:
                totals[op.name] += 1
                dialects.add(op.dialect)
        kept = [name for name, count in totals.items() if count >= self.min_count]
        if self.max_features is not None:
            kept = sorted(kept, key=lambda name: (-totals[name], name))
            kept = kept[: self.max_features]
        self.vocabulary_ = {name: i for i, name in enumerate(sorted(kept))}
        self.dialects_ = sorted(dialects)

    def _extract(self, modules: list[ParsedModule]) -> np.ndarray:
        vocab = self.vocabulary_
        n_ops = len(vocab)
        dialect_col = {d: i + n_ops + 1 for i, d in enumerate(self.dialects_)}
        width = n_ops + 1 + len(dialect_col) + 1
        op_col, unseen_op = vocab.get, n_ops
        dialect_of, unseen_dialect = dialect_col.get, width - 1
        # Two cells per op (its name's column, its dialect's), counted at once.
        cells = []
        add = cells.append
        for row, module in enumerate(modules):
            base = row * width
            for op in module.ops:
                add(base + op_col(op.name, unseen_op))
                add(base + dialect_of(op.dialect, unseen_dialect))
        counts = np.bincount(
            np.asarray(cells, dtype=np.intp), minlength=len(modules) * width
        )
        counts = counts.reshape(len(modules), width).astype(np.float64)
        if self.log_scale:
            counts = np.log1p(counts)
        if self.normalize is not None:
            # each block on its own, as contiguous arrays
            blocks = (
                np.ascontiguousarray(counts[:, : n_ops + 1]),
                np.ascontiguousarray(counts[:, n_ops + 1 :]),
            )
            counts = np.hstack(
                [_normalize_rows(b, norm=self.normalize) for b in blocks]
            )
        return counts

    def _feature_names(self) -> list[str]:
        return [
            *(f"op {name}" for name in self.vocabulary_),
            f"op {_UNSEEN}",
            *(f"dialect {d}" for d in self.dialects_),
            f"dialect {_UNSEEN}",
        ]
