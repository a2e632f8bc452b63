"""TF-IDF over op-sequence n-grams: sklearn's ``TfidfVectorizer`` with an MLIR analyzer."""

from __future__ import annotations

import functools
from itertools import groupby
from numbers import Integral

import numpy as np
from scipy import sparse
from sklearn import get_config
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.sparsefuncs_fast import (
    inplace_csr_row_normalize_l1,
    inplace_csr_row_normalize_l2,
)

from ..mlir._ir import Op, ParsedModule
from ._base import BaseMLIRFeaturizer

__all__ = ["OpNgramTfidf", "op_ngrams"]

_PASSTHROUGH = (
    "min_df",
    "max_df",
    "max_features",
    "sublinear_tf",
    "norm",
    "use_idf",
    "smooth_idf",
    "dtype",
)

# Up to this many documents, transform computes the TF-IDF rows itself instead of
# calling TfidfVectorizer.transform (see OpNgramTfidf._few_rows).
_FEW_DOCUMENTS = 32
_NORMALIZE = {"l1": inplace_csr_row_normalize_l1, "l2": inplace_csr_row_normalize_l2}


def _op_token(op: Op, type_classes: bool) -> str:
    if not type_classes:
        return op.name
    types = op.result_types or op.operand_types
    if not types:
        return op.name
    t = types[0]
    element = t.element or t.kind
    if t.shape is None or t.kind == "scalar":
        return f"{op.name}:{element}"
    return f"{op.name}:{element}x{len(t.shape)}"


def _function_of(op: Op) -> str | None:
    # A function op belongs with its body, whose ops name it as their function.
    return op.function if op.function is not None else op.symbol


def op_ngrams(
    module: ParsedModule,
    ngram_range: tuple[int, int] = (1, 2),
    type_classes: bool = False,
) -> list[str]:
    """The n-gram strings of a module's op sequence (the analyzer of :class:`OpNgramTfidf`).

    Ops are taken in program order within each function, so no n-gram spans two
    functions; with ``type_classes`` each op carries its first result's (else
    operand's) element type and rank, as in ``linalg.matmul:f32x2``.

    Examples
    --------
    >>> from mlircost_classic.mlir._ir import Op, ParsedModule
    >>> m = ParsedModule(ops=[Op("linalg.fill", "linalg"), Op("linalg.matmul", "linalg")])
    >>> op_ngrams(m, (1, 2))
    ['ngram linalg.fill', 'ngram linalg.matmul', 'ngram linalg.fill linalg.matmul']
    """
    lo, hi = ngram_range
    grams = []
    extend = grams.extend
    for _, group in groupby(module.ops, key=_function_of):
        if type_classes:
            tokens = [_op_token(op, True) for op in group]
        else:
            tokens = [op.name for op in group]
        for n in range(lo, hi + 1):
            if n == 1:
                extend(["ngram " + t for t in tokens])
            elif n == 2:
                extend(
                    [f"ngram {a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]
                )
            else:
                extend(
                    "ngram " + " ".join(tokens[i : i + n])
                    for i in range(len(tokens) - n + 1)
                )
    return grams


def _as_analyzed(grams):
    """The analyzer of documents that are already n-gram lists."""
    return grams


class _Rows:
    """The CSR arrays sklearn's in-place row normalisers read."""

    __slots__ = ("data", "shape", "indices", "indptr")

    def __init__(self, data, shape, indices, indptr):
        self.data, self.shape, self.indices, self.indptr = data, shape, indices, indptr


class OpNgramTfidf(BaseMLIRFeaturizer, auto_wrap_output_keys=None):
    """TF-IDF of op-sequence n-grams (``ngram linalg.fill linalg.matmul``).

    A thin layer over :class:`sklearn.feature_extraction.text.TfidfVectorizer`
    whose analyzer is :func:`op_ngrams`; its TF-IDF parameters pass through
    unchanged. Output is a sparse matrix, as for ``TfidfVectorizer``.

    Batches are transformed by the fitted ``TfidfVectorizer``. A few documents
    (up to 32: a compiler asking about one module) take a latency path that
    computes the same matrix from the vectorizer's ``vocabulary_``, ``idf_``
    and parameters without its per-call input validation, which would
    otherwise dominate the cost of one row; the tests check that both give
    identical matrices.

    Parameters
    ----------
    ngram_range : tuple (min_n, max_n), default=(1, 2)
        Lengths of op n-grams.
    type_classes : bool, default=False
        Suffix each op with its element type and rank (``linalg.matmul:f32x2``).
    min_df, max_df, max_features, sublinear_tf, norm, use_idf, smooth_idf, dtype
        As in :class:`~sklearn.feature_extraction.text.TfidfVectorizer`.
    input : {"content", "filename"}, default="content"
        Whether documents are MLIR texts or file names.
    on_error : {"raise", "warn", "ignore"}, default="raise"
        What to do with unreadable documents, see :class:`BaseMLIRFeaturizer`.
    n_jobs : int, default=None
        Documents read in parallel with joblib.

    Attributes
    ----------
    vectorizer_ : TfidfVectorizer or None
        The fitted vectorizer; None when the training documents hold no op at
        all, and then the output has no n-gram columns.
    vocabulary_ : dict of str -> int
        N-gram -> column index.
    parse_error_column_ : bool
        Whether the output ends with a ``parse_error`` column.

    Examples
    --------
    >>> from mlircost_classic.featurize import OpNgramTfidf
    >>> text = '''func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
    ...   %0 = arith.addf %a, %a : tensor<4xf32>
    ...   return %0 : tensor<4xf32>
    ... }'''
    >>> tfidf = OpNgramTfidf(ngram_range=(2, 2)).fit([text])
    >>> list(tfidf.get_feature_names_out())
    ['ngram arith.addf func.return', 'ngram func.func arith.addf']
    """

    _parameter_constraints: dict = {
        **BaseMLIRFeaturizer._parameter_constraints,
        "ngram_range": [tuple],
        "type_classes": ["boolean"],
        **{k: TfidfVectorizer._parameter_constraints[k] for k in _PASSTHROUGH},
    }
    _sparse = True

    def __init__(
        self,
        *,
        ngram_range=(1, 2),
        type_classes=False,
        min_df=1,
        max_df=1.0,
        max_features=None,
        sublinear_tf=False,
        norm="l2",
        use_idf=True,
        smooth_idf=True,
        dtype=np.float64,
        input="content",
        on_error="raise",
        n_jobs=None,
    ):
        self.ngram_range = ngram_range
        self.type_classes = type_classes
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf
        self.norm = norm
        self.use_idf = use_idf
        self.smooth_idf = smooth_idf
        self.dtype = dtype
        self.input = input
        self.on_error = on_error
        self.n_jobs = n_jobs

    def _analyzer(self):
        """The analyzer of the vectorizer: :func:`op_ngrams` with this range."""
        lo, hi = self.ngram_range
        if not (
            isinstance(lo, Integral) and isinstance(hi, Integral) and 1 <= lo <= hi
        ):
            raise ValueError(
                f"ngram_range must be (min_n, max_n) with 1 <= min_n <= max_n, "
                f"got {self.ngram_range!r}"
            )
        return functools.partial(
            op_ngrams, ngram_range=(lo, hi), type_classes=self.type_classes
        )

    def _fit_modules(self, modules: list[ParsedModule]) -> None:
        self._fit_vectorizer(self._analyzer(), modules)

    def _fit_vectorizer(self, analyzer, documents) -> bool:
        """Fit ``vectorizer_`` on ``documents`` with ``analyzer``; False if no op."""
        params = {k: getattr(self, k) for k in _PASSTHROUGH}
        self.vectorizer_ = TfidfVectorizer(analyzer=analyzer, **params)
        try:
            self.vectorizer_.fit(documents)
        except ValueError as exc:
            if "empty vocabulary" not in str(exc):
                raise
            # No op at all in the training documents: no columns rather than a
            # failed run (min_df/max_df pruning everything still raises).
            self.vectorizer_ = None
            self.vocabulary_ = {}
            return False
        self.vocabulary_ = self.vectorizer_.vocabulary_
        return True

    def _fit_transform_analyzed(self, grams: list, analyzer) -> sparse.csr_matrix:
        """Fit on, and transform, documents given as their n-gram lists.

        ``grams[i]`` is ``analyzer`` (``self._analyzer()``) of document i,
        computed by the caller while the parsed module was at hand
        (:class:`MLIRFeaturizer` keeps only these, not the modules). The
        vectorizer is fitted and applied with an identity analyzer, then gets
        ``analyzer`` back: the same vocabulary, idf and rows as ``fit`` and
        ``transform`` of the modules.
        """
        if not self._fit_vectorizer(_as_analyzed, grams):
            return sparse.csr_matrix((len(grams), 0))
        try:
            return self.vectorizer_.transform(grams)
        finally:
            self.vectorizer_.analyzer = analyzer

    def _extract(self, modules: list[ParsedModule]):
        if self.vectorizer_ is None:
            return sparse.csr_matrix((len(modules), 0))
        if len(modules) <= _FEW_DOCUMENTS:
            return self._few_rows(modules)
        return self.vectorizer_.transform(modules)

    def _few_rows(self, modules: list[ParsedModule]):
        """``self.vectorizer_.transform(modules)``, computed directly.

        The steps and numpy operations are those of ``CountVectorizer._count_vocab``
        (counts in vocabulary order, int32 indices) and ``TfidfTransformer.transform``
        (float64 or float32 data, ``log(tf) + 1``, ``* idf_``, sklearn's own
        row normalisation), so the result is the same matrix, bit for bit; only
        the validation sklearn repeats on every call is left out.
        """
        arrays = self._few_row_arrays(modules)
        if arrays is None:
            return self.vectorizer_.transform(modules)
        if get_config().get("sparse_interface") == "sparray":
            return sparse.csr_array(arrays[:3], shape=arrays[3])
        return sparse.csr_matrix(arrays[:3], shape=arrays[3])

    def _few_row_arrays(self, modules: list[ParsedModule]):
        """``(data, indices, indptr, shape)`` of :meth:`_few_rows`' matrix, or None.

        None where sklearn's own ``transform`` must make the rows.
        """
        v = self.vectorizer_
        dtype = np.dtype(v.dtype)
        if not (dtype == np.float64 or dtype == np.float32) or not hasattr(v, "_tfidf"):
            # sklearn converts or refuses other dtypes, and raises when a
            # vectorizer was rebuilt without idf_: leave those cases to it
            return None
        analyze = v.analyzer
        vocabulary = v.vocabulary_
        get = vocabulary.get
        indices: list[int] = []
        counts: list[int] = []
        indptr = [0]
        for module in modules:
            row: dict[int, int] = {}
            for gram in analyze(module):
                j = get(gram)
                if j is not None:
                    row[j] = row.get(j, 0) + 1
            for j in sorted(row):
                indices.append(j)
                counts.append(row[j])
            indptr.append(len(indices))
        data = np.array(counts, dtype=np.intc).astype(dtype)
        cols = np.array(indices, dtype=np.int32)
        rows = np.array(indptr, dtype=np.int32)
        if v.sublinear_tf:
            np.log(data, data)
            data += 1.0
        if hasattr(v, "idf_"):
            data *= v.idf_[cols]
        shape = (len(modules), len(vocabulary))
        if v.norm is not None:
            _NORMALIZE[v.norm](_Rows(data, shape, cols, rows))
        return data, cols, rows, shape

    def _extract_dense(self, modules: list[ParsedModule]) -> np.ndarray:
        """``self._extract(modules).toarray()``, without the sparse matrix for a few rows."""
        if self.vectorizer_ is not None and len(modules) <= _FEW_DOCUMENTS:
            arrays = self._few_row_arrays(modules)
            if arrays is not None:
                data, cols, rows, shape = arrays
                dense = np.zeros(shape, dtype=data.dtype)
                dense[np.repeat(np.arange(shape[0]), np.diff(rows)), cols] = data
                return dense
        return super()._extract_dense(modules)

    def _feature_names(self) -> list[str]:
        if self.vectorizer_ is None:
            return []
        return list(self.vectorizer_.get_feature_names_out())
