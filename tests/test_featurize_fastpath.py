"""The few-documents latency paths give exactly what the batch paths give.

:class:`OpNgramTfidf` computes the TF-IDF rows of up to ``_FEW_DOCUMENTS``
documents itself instead of calling ``TfidfVectorizer.transform``, and
:class:`MLIRFeaturizer` stacks few rows dense; both must be bit-identical to
sklearn's results.
"""

import itertools
import warnings

import numpy as np
import pytest
import sklearn
from scipy import sparse
from test_featurize_api import CONV, DOCS, ELEMENTWISE, LOOPS, MATMUL  # noqa: E402

from mlircost_classic.featurize import (
    MLIRFeaturizer,
    OpcodeCounter,
    OpNgramTfidf,
    _ngram,
)
from mlircost_classic.featurize._union import _dense_to_csr
from mlircost_classic.mlir import parse

UNSEEN = """
func.func @other(%a: tensor<4x4xbf16>) -> tensor<4x4xbf16> {
  %0 = math.tanh %a : tensor<4x4xbf16>
  %1 = math.tanh %0 : tensor<4x4xbf16>
  %2 = math.tanh %1 : tensor<4x4xbf16>
  %3 = arith.addf %2, %a : tensor<4x4xbf16>
  return %3 : tensor<4x4xbf16>
}
"""
EMPTY = "// nothing but a comment\n"
REPEATED = MATMUL + ELEMENTWISE.replace("@add", "@add2") * 1 + "\n" + LOOPS
TRANSFORM_DOCS = [
    MATMUL,
    ELEMENTWISE,
    LOOPS,
    CONV,
    UNSEEN,
    EMPTY,
    REPEATED,
    "module {\n}\n",
]

PARAMS = [
    dict(zip(("norm", "sublinear_tf", "use_idf", "smooth_idf"), values, strict=True))
    for values in itertools.product(
        ("l1", "l2", None), (False, True), (True, False), (True, False)
    )
]


def _batch(tfidf, modules):
    """What sklearn's TfidfVectorizer gives (the batch path)."""
    return tfidf.vectorizer_.transform(modules)


def _assert_same(fast, slow):
    assert type(fast) is type(slow)
    assert fast.shape == slow.shape
    assert fast.dtype == slow.dtype
    assert fast.indices.dtype == slow.indices.dtype
    assert fast.indptr.dtype == slow.indptr.dtype
    fast.sort_indices()
    slow.sort_indices()
    np.testing.assert_array_equal(fast.indptr, slow.indptr)
    np.testing.assert_array_equal(fast.indices, slow.indices)
    np.testing.assert_array_equal(fast.data, slow.data)  # bit for bit


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: "-".join(map(str, p.values())))
@pytest.mark.parametrize(
    "ngram_range,type_classes", [((1, 2), False), ((1, 3), True), ((2, 4), False)]
)
def test_ngram_few_rows_equal_sklearn(params, ngram_range, type_classes):
    tfidf = OpNgramTfidf(ngram_range=ngram_range, type_classes=type_classes, **params)
    tfidf.fit(DOCS + [DOCS[0]])
    modules = [parse(t) for t in TRANSFORM_DOCS]
    # one document at a time, and all of them at once (both below the threshold)
    for m in modules:
        _assert_same(tfidf._extract([m]), _batch(tfidf, [m]))
    _assert_same(tfidf._extract(modules), _batch(tfidf, modules))
    _assert_same(tfidf.transform(TRANSFORM_DOCS), _batch(tfidf, modules))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float32", np.int64])
def test_ngram_few_rows_dtypes(dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn: non-float dtype
        tfidf = OpNgramTfidf(dtype=dtype, sublinear_tf=True).fit(DOCS)
        modules = [parse(t) for t in TRANSFORM_DOCS]
        _assert_same(tfidf._extract(modules), _batch(tfidf, modules))


def test_ngram_min_df_max_features():
    tfidf = OpNgramTfidf(ngram_range=(1, 3), min_df=2, max_features=5)
    tfidf.fit(DOCS + [REPEATED, UNSEEN])
    modules = [parse(t) for t in TRANSFORM_DOCS]
    _assert_same(tfidf._extract(modules), _batch(tfidf, modules))


def test_ngram_batch_path_above_threshold():
    tfidf = OpNgramTfidf().fit(DOCS)
    modules = [parse(t) for t in TRANSFORM_DOCS]
    many = modules * (_ngram._FEW_DOCUMENTS // len(modules) + 1)
    assert len(many) > _ngram._FEW_DOCUMENTS
    slow = tfidf._extract(many)  # sklearn's path
    fast = sparse.vstack([tfidf._extract([m]) for m in many], format="csr")
    np.testing.assert_array_equal(fast.toarray(), slow.toarray())


def test_ngram_few_rows_sparse_interface():
    tfidf = OpNgramTfidf().fit(DOCS)
    modules = [parse(t) for t in TRANSFORM_DOCS]
    if "sparse_interface" not in sklearn.get_config():
        pytest.skip("this sklearn has no sparse_interface setting")
    with sklearn.config_context(sparse_interface="sparray"):
        _assert_same(tfidf._extract(modules), _batch(tfidf, modules))


@pytest.mark.parametrize("n", [1, 3, 40])
def test_union_few_rows_equal_sparse_hstack(n):
    featurizer = MLIRFeaturizer().fit(DOCS)
    docs = (TRANSFORM_DOCS * 6)[:n]
    modules = [parse(t) for t in docs]
    blocks = [part._extract(modules) for _, part in featurizer.transformers_]
    expected = sparse.hstack(blocks, format="csr", dtype=np.float64)
    got = featurizer._extract(modules)
    assert sparse.isspmatrix_csr(got)
    assert got.dtype == np.float64
    assert got.has_canonical_format
    np.testing.assert_array_equal(got.toarray(), expected.toarray())


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((0, 3)),
        np.zeros((2, 0)),
        np.zeros((3, 4)),
        np.array([[0.0, -0.0, 1.5, np.nan], [np.inf, 0.0, 0.0, 2.0]]),
        np.random.default_rng(0).choice([0.0, 1.0, 2.5], size=(7, 11)),
    ],
)
def test_dense_to_csr(array):
    got = _dense_to_csr(array)
    expected = sparse.csr_matrix(array, dtype=np.float64)
    assert type(got) is type(expected)
    assert got.shape == expected.shape
    assert got.indices.dtype == expected.indices.dtype
    assert got.indptr.dtype == expected.indptr.dtype
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(got.data, expected.data)


def test_parallel_transform_in_chunks_equals_one_pass(monkeypatch):
    from mlircost_classic.featurize import _base
    from mlircost_classic.mlir import MLIRSyntaxError

    # Chunks of 8 (the few-rows paths); the unreadable document is the second
    # of the third chunk, document 17.
    monkeypatch.setattr(_base, "PARALLEL_CHUNK", 8)
    docs = [*TRANSFORM_DOCS * 2, MATMUL, "func.func @f( {", *TRANSFORM_DOCS[:3]]
    featurizer = MLIRFeaturizer(on_error="warn").fit(DOCS)
    with warnings.catch_warnings(record=True) as serial_warnings:
        warnings.simplefilter("always")
        one_pass = featurizer.transform(docs)
    featurizer.set_params(n_jobs=2)
    with warnings.catch_warnings(record=True) as chunk_warnings:
        warnings.simplefilter("always")
        chunked = featurizer.transform(docs)
    _assert_same(chunked, one_pass)
    assert chunked[17, -1] == 1 and chunked[:, -1].sum() == 1
    assert [str(w.message) for w in chunk_warnings] == [
        str(w.message) for w in serial_warnings
    ]
    assert len(chunk_warnings) == 1 and "document 17" in str(chunk_warnings[0].message)
    featurizer.set_params(on_error="raise")
    with pytest.raises(MLIRSyntaxError) as info:
        featurizer.transform(docs)
    assert "while reading document 17" in info.value.__notes__


def _opcode_rows_one_by_one(counter, modules):
    """OpcodeCounter's rows computed op by op, a cell at a time (the oracle)."""
    from sklearn.preprocessing import normalize

    n_ops, dialects = len(counter.vocabulary_), counter.dialects_
    ops = np.zeros((len(modules), n_ops + 1))
    by_dialect = np.zeros((len(modules), len(dialects) + 1))
    for row, module in enumerate(modules):
        for op in module.ops:
            ops[row, counter.vocabulary_.get(op.name, n_ops)] += 1
            d = dialects.index(op.dialect) if op.dialect in dialects else len(dialects)
            by_dialect[row, d] += 1
    blocks = [ops, by_dialect]
    if counter.log_scale:
        blocks = [np.log1p(b) for b in blocks]
    if counter.normalize is not None:
        blocks = [normalize(b, norm=counter.normalize) for b in blocks]
    return np.hstack(blocks)


@pytest.mark.parametrize("normalize", [None, "l1", "l2"])
@pytest.mark.parametrize("log_scale", [False, True])
@pytest.mark.parametrize("max_features", [None, 3])
def test_opcode_counts_equal_one_by_one(normalize, log_scale, max_features):
    counter = OpcodeCounter(
        normalize=normalize, log_scale=log_scale, max_features=max_features
    ).fit(DOCS[:2])
    modules = [parse(t) for t in TRANSFORM_DOCS + DOCS]
    got = counter._extract(modules)
    expected = _opcode_rows_one_by_one(counter, modules)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got[:, -1].any()  # unseen dialects are counted
    np.testing.assert_array_equal(got, expected)  # bit for bit


def _assert_bitwise_equal(got: np.ndarray, expected: np.ndarray):
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got.view(np.uint64), expected.view(np.uint64))


@pytest.mark.parametrize("n", [0, 1, 3, 40])
@pytest.mark.parametrize(
    "featurizer",
    [
        MLIRFeaturizer(),
        MLIRFeaturizer(ngrams=OpNgramTfidf(dtype=np.float32, sublinear_tf=True)),
        MLIRFeaturizer(ngrams="drop"),
        OpNgramTfidf(),
        OpcodeCounter(),
    ],
    ids=["default", "float32-ngrams", "dense", "ngrams", "opcodes"],
)
def test_dense_rows_are_transform_as_an_array(featurizer, n):
    # The models' few-rows path reads these rows instead of transform's matrix:
    # bit for bit its values, 0.0 where the matrix stores nothing.
    featurizer.fit(DOCS)
    docs = (TRANSFORM_DOCS * 6)[:n]
    expected = featurizer.transform(docs)
    expected = expected.toarray() if sparse.issparse(expected) else expected
    _assert_bitwise_equal(featurizer._dense_rows(docs), expected.astype(np.float64))


def test_dense_rows_of_unreadable_documents():
    featurizer = MLIRFeaturizer(on_error="ignore").fit(DOCS)
    docs = [MATMUL, "func.func @f( {", LOOPS]
    expected = featurizer.transform(docs).toarray()
    got = featurizer._dense_rows(docs)
    _assert_bitwise_equal(got, expected)
    assert got[1, -1] == 1.0 and not got[1, :-1].any()  # parse_error, zeros


def test_dense_rows_store_no_negative_zero(monkeypatch):
    # A sparse matrix does not store a -0.0: its array holds 0.0 there.
    featurizer = MLIRFeaturizer().fit(DOCS)
    real = OpcodeCounter._extract
    monkeypatch.setattr(
        OpcodeCounter, "_extract", lambda self, modules: -real(self, modules)
    )
    expected = featurizer.transform([MATMUL]).toarray()
    got = featurizer._dense_rows([MATMUL])
    assert np.signbit(featurizer.transformers_[0][1]._extract([parse(MATMUL)])).any()
    _assert_bitwise_equal(got, expected)
