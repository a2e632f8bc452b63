"""The default featurizer: opcode counts, op n-gram TF-IDF and shape features."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.base import clone
from sklearn.utils._param_validation import StrOptions

from ..mlir._ir import ParsedModule
from . import _base
from ._base import BaseMLIRFeaturizer, _collector_paused, _read_or_error
from ._ngram import OpNgramTfidf
from ._opcode import OpcodeCounter
from ._shape import ShapeFeatures

__all__ = ["MLIRFeaturizer"]

_PARTS = (
    ("opcodes", OpcodeCounter),
    ("ngrams", OpNgramTfidf),
    ("shapes", ShapeFeatures),
)

# fit_transform reads and summarises this many documents at a time.
_FIT_CHUNK = 1024

#: Text a worker of a parallel ``fit_transform`` reads at most in one task
#: (unless one document is larger): see :func:`_spans`.
_WORKER_CHARS = 8 << 20


def _shared_grams(grams: list[str], shared: dict) -> list[str]:
    """``grams`` with each string the one object ``shared`` keeps for it."""
    return [shared.setdefault(g, g) for g in grams]


def _spans(docs: list):
    """``(start, stop)`` of consecutive chunks of ``docs`` for the workers.

    At most :data:`~._base.PARALLEL_CHUNK` documents and, past the first, at most
    :data:`_WORKER_CHARS` characters of text a chunk: a parsed module takes
    about six times its text, and a loky worker that grows 300 MB is replaced
    (with a warning) after its task.
    """
    start, chars = 0, 0
    for i, doc in enumerate(docs):
        size = len(doc) if isinstance(doc, (str, bytes)) else 0
        full = i - start >= _base.PARALLEL_CHUNK or chars + size > _WORKER_CHARS
        if i > start and full:
            yield start, i
            start, chars = i, 0
        chars += size
    if start < len(docs):
        yield start, len(docs)


def _summarize(docs: list, task: tuple, shared: dict | None = None) -> tuple:
    """Read ``docs`` and keep what :meth:`MLIRFeaturizer.fit_transform` needs.

    ``task`` is (whether to keep op names, the n-gram analyzer or None, the
    shapes part or None, the ``input`` parameter). Returns the reading errors
    ``(index in docs, exception)``, the indices read, and for the documents
    read, in order: their op names (:class:`_OpNames`), their n-gram lists
    and their shape rows (an array, or None without the part). Strings are
    shared through ``shared`` (a new dict when None).
    """
    opcodes, analyze, shapes, input = task
    shared = {} if shared is None else shared
    with _collector_paused():
        results = [_read_or_error(doc, input) for doc in docs]
        errors = [(i, exc) for i, (_, exc) in enumerate(results) if exc is not None]
        read = [i for i, (module, _) in enumerate(results) if module is not None]
        modules = [results[i][0] for i in read]
        del results  # the chunk's modules go with ``modules``
        names = [_OpNames.of(m, shared) for m in modules] if opcodes else []
        grams = (
            [_shared_grams(analyze(m), shared) for m in modules]
            if analyze is not None
            else []
        )
        rows = shapes._extract(modules) if shapes is not None and read else None
        del modules
    return errors, read, names, grams, rows


class _OpName(NamedTuple):
    """What :class:`OpcodeCounter` reads of an op."""

    name: str
    dialect: str


class _OpNames:
    """What :class:`OpcodeCounter` reads of a module: its ops' names and dialects."""

    __slots__ = ("ops",)

    def __init__(self, ops: list):
        self.ops = ops

    @classmethod
    def of(cls, module: ParsedModule, shared: dict) -> _OpNames:
        """The ops of ``module``, each name pair the one object ``shared`` keeps."""
        ops = []
        for op in module.ops:
            key = (op.name, op.dialect)
            name = shared.get(key)
            if name is None:
                name = shared[key] = _OpName(*key)
            ops.append(name)
        return cls(ops)

    @classmethod
    def shared(cls, names: _OpNames, shared: dict) -> _OpNames:
        """``names`` with each name pair the one object ``shared`` keeps."""
        return cls([shared.setdefault(op, op) for op in names.ops])


# Below this many output cells, blocks are stacked dense, then made sparse.
_DENSE_STACK_CELLS = 1 << 16


def _dense_to_csr(array: np.ndarray) -> sparse.csr_matrix:
    """``sparse.csr_matrix(array, dtype=np.float64)`` for a small 2-D array.

    The same matrix (canonical, int32 indices; a few rows only, so int32 always
    fits), built from ``np.nonzero`` in a fraction of the time scipy's dense
    constructor takes through its COO detour.
    """
    array = np.asarray(array, dtype=np.float64)
    n = array.shape[0]
    rows, cols = np.nonzero(array)
    indptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return sparse.csr_matrix(
        (array[rows, cols], cols.astype(np.int32), indptr), shape=array.shape
    )


class MLIRFeaturizer(BaseMLIRFeaturizer):
    """Union of :class:`OpcodeCounter`, :class:`OpNgramTfidf` and :class:`ShapeFeatures`.

    Unlike a :class:`~sklearn.pipeline.FeatureUnion` of the three, every
    document is read once and the parsed module is shared by the parts. The
    parts' own ``input``, ``on_error`` and ``n_jobs`` are not used: this
    featurizer's apply. Feature names are prefixed with the part's name
    (``opcodes__op linalg.matmul``, ``shapes__matmul FLOPs``).

    The output is a CSR sparse matrix when a sparse part (the n-grams) is
    active, else a dense array (then ``set_output(transform="pandas")`` works).

    Parameters
    ----------
    opcodes : OpcodeCounter, "drop" or None, default=None
        Opcode counts; None means ``OpcodeCounter()``, ``"drop"`` leaves it out.
    ngrams : OpNgramTfidf, "drop" or None, default=None
        Op n-gram TF-IDF; None means ``OpNgramTfidf()``.
    shapes : ShapeFeatures, "drop" or None, default=None
        Shape and cost features; None means ``ShapeFeatures()``.
    input : {"content", "filename"}, default="content"
        Whether documents are MLIR texts or file names.
    on_error : {"raise", "warn", "ignore"}, default="raise"
        What to do with unreadable documents, see :class:`BaseMLIRFeaturizer`.
    n_jobs : int, default=None
        Documents read in parallel with joblib.

    Attributes
    ----------
    transformers_ : list of (str, BaseMLIRFeaturizer)
        The fitted parts that are not dropped, in column order.
    parse_error_column_ : bool
        Whether the output ends with a ``parse_error`` column.

    Examples
    --------
    >>> from mlircost_classic.featurize import MLIRFeaturizer
    >>> text = '''func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
    ...   %0 = arith.addf %a, %a : tensor<4xf32>
    ...   return %0 : tensor<4xf32>
    ... }'''
    >>> X = MLIRFeaturizer(ngrams="drop").fit_transform([text, text])
    >>> X.shape[0]
    2
    """

    _parameter_constraints: dict = {
        **BaseMLIRFeaturizer._parameter_constraints,
        "opcodes": [OpcodeCounter, StrOptions({"drop"}), None],
        "ngrams": [OpNgramTfidf, StrOptions({"drop"}), None],
        "shapes": [ShapeFeatures, StrOptions({"drop"}), None],
    }

    def __init__(
        self,
        *,
        opcodes=None,
        ngrams=None,
        shapes=None,
        input="content",
        on_error="raise",
        n_jobs=None,
    ):
        self.opcodes = opcodes
        self.ngrams = ngrams
        self.shapes = shapes
        self.input = input
        self.on_error = on_error
        self.n_jobs = n_jobs

    @property
    def _sparse(self) -> bool:
        return any(part._sparse for _, part in getattr(self, "transformers_", ()))

    def _new_parts(self) -> list:
        """``(name, unfitted part)`` of the parts that are not dropped."""
        parts = []
        for name, default in _PARTS:
            value = getattr(self, name)
            if isinstance(value, str):  # "drop"
                continue
            part = default() if value is None else clone(value)
            part.parse_error_column_ = False
            parts.append((name, part))
        if not parts:
            raise ValueError(
                "all parts are dropped; keep at least one of opcodes, ngrams, shapes"
            )
        return parts

    def _fit_modules(self, modules: list[ParsedModule]) -> None:
        parts = self._new_parts()
        for _, part in parts:
            part._fit_modules(modules)
        self.transformers_ = parts

    def _fit_transform_documents(self, docs: list):
        """Fit and transform keeping a chunk of parsed modules at a time.

        A parsed module takes about six times the memory of its text; the
        parts need much less of it to fit and to make their rows: the op
        names and dialects (opcodes), the n-gram list (n-grams, which fits its
        vectorizer on those lists), the rows (shapes, which learns nothing).
        Those are taken from each chunk of modules as it is read, with the
        strings shared between documents, and the modules are dropped. The
        output and the fitted parts are those of reading everything first
        (the tests compare both). Parts of other classes (subclasses of the
        three) take the reading-everything path.
        """
        parts = self._new_parts()
        defaults = dict(_PARTS)
        if any(type(part) is not defaults[name] for name, part in parts):
            return super()._fit_transform_documents(docs)
        by_name = dict(parts)
        opcodes, ngrams, shapes = (by_name.get(name) for name, _ in _PARTS)
        if shapes is not None:
            shapes._fit_modules([])  # its state is the catalog only
        analyze = ngrams._analyzer() if ngrams is not None else None
        op_names, grams, shape_rows, ok = [], [], [], []
        for start, (errors, read, names, analyzed, rows) in self._summaries(
            docs, opcodes is not None, analyze, shapes
        ):
            self._on_errors((start + i, exc) for i, exc in errors)
            ok.extend(start + i for i in read)
            op_names += names
            grams += analyzed
            if rows is not None:
                shape_rows.append(rows)
        self._check_readable(len(docs), len(ok))
        self.parse_error_column_ = self.on_error != "raise"
        blocks = []
        if opcodes is not None:
            opcodes._fit_modules(op_names)
            blocks.append(opcodes._extract(op_names))
        if ngrams is not None:
            blocks.append(ngrams._fit_transform_analyzed(grams, analyze))
        if shapes is not None:
            blocks.append(np.vstack(shape_rows))
        self.transformers_ = parts
        return self._full_rows(self._stack(blocks, len(ok)), ok, len(docs))

    def _summaries(self, docs: list, opcodes: bool, analyze, shapes):
        """``(start, summary)`` of each chunk of ``docs`` (see :func:`_summarize`).

        With ``n_jobs``, chunks of more than one go to joblib workers, which
        send back the summaries, not the parsed modules (those cost more to
        send than to make); the strings are then shared between chunks here.
        """
        task = (opcodes, analyze, shapes, self.input)
        if self.n_jobs in (None, 1) or len(docs) <= _base.PARALLEL_CHUNK:
            shared: dict = {}  # one object per distinct string / op name pair
            for start in range(0, len(docs), _FIT_CHUNK):
                yield start, _summarize(docs[start : start + _FIT_CHUNK], task, shared)
            return
        spans = list(_spans(docs))
        done = Parallel(n_jobs=self.n_jobs)(
            delayed(_summarize)(docs[start:stop], task) for start, stop in spans
        )
        shared = {}
        for (start, _), (errors, read, names, analyzed, rows) in zip(
            spans, done, strict=True
        ):
            names = [_OpNames.shared(n, shared) for n in names]
            analyzed = [_shared_grams(g, shared) for g in analyzed]
            yield start, (errors, read, names, analyzed, rows)

    def _extract(self, modules: list[ParsedModule]):
        return self._stack(
            [part._extract(modules) for _, part in self.transformers_], len(modules)
        )

    def _extract_dense(self, modules: list[ParsedModule]) -> np.ndarray:
        return np.hstack(
            [part._extract_dense(modules) for _, part in self.transformers_]
        )

    @staticmethod
    def _stack(blocks: list, n: int):
        """The parts' blocks of ``n`` rows side by side."""
        if not any(sparse.issparse(b) for b in blocks):
            return np.hstack(blocks)
        width = sum(b.shape[1] for b in blocks)
        if n * width <= _DENSE_STACK_CELLS:
            # A few rows (a compiler asking about one module): stacking dense and
            # converting once is ~4x faster than sparse.hstack, same matrix.
            dense = [b.toarray() if sparse.issparse(b) else b for b in blocks]
            return _dense_to_csr(np.hstack(dense))
        return sparse.hstack(blocks, format="csr", dtype=np.float64)

    def _feature_names(self) -> list[str]:
        return [
            f"{name}__{feature}"
            for name, part in self.transformers_
            for feature in part._feature_names()
        ]
