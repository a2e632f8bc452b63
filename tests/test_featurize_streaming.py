"""``MLIRFeaturizer.fit_transform`` reads a chunk at a time, with the same result.

It keeps each document's op names, n-gram list and shape row instead of the
parsed module, so that fitting on the bundled kernels does not hold every
parsed module at once. The output, the fitted parts and later transforms must
be those of reading everything first (``BaseMLIRFeaturizer``'s path).
"""

import warnings
import weakref
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from test_featurize_api import DOCS
from test_featurize_fastpath import TRANSFORM_DOCS

from mlircost_classic.featurize import (
    MLIRFeaturizer,
    OpcodeCounter,
    OpNgramTfidf,
    _base,
    _union,
)
from mlircost_classic.featurize._base import BaseMLIRFeaturizer
from mlircost_classic.mlir import MLIRSyntaxError, ParsedModule, parse

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "mlir-corpus"
JUNK = "func.func @f( {"


def _corpus(n: int = 60) -> list[str]:
    """Real compiler test inputs the reader accepts, else the small documents."""
    texts = []
    for path in sorted(CORPUS.glob("*/*.mlir"))[: 4 * n]:
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            parse(text)
        except MLIRSyntaxError:
            continue  # the error tests put their unreadable documents in
        texts.append(text)
    return texts[:n] or TRANSFORM_DOCS * 4


def _reading_everything(featurizer, docs):
    """The output of the path that parses every document before fitting."""
    return BaseMLIRFeaturizer._fit_transform_documents(featurizer, list(docs))


def _bits(X) -> np.ndarray:
    dense = X.toarray() if sparse.issparse(X) else np.asarray(X)
    return np.ascontiguousarray(dense, dtype=np.float64).view(np.int64)


def _assert_same_fit(a: MLIRFeaturizer, b: MLIRFeaturizer) -> None:
    assert list(a.get_feature_names_out()) == list(b.get_feature_names_out())
    for (name, part_a), (_, part_b) in zip(
        a.transformers_, b.transformers_, strict=True
    ):
        if name == "opcodes":
            assert part_a.vocabulary_ == part_b.vocabulary_
            assert part_a.dialects_ == part_b.dialects_
        if name == "ngrams" and part_a.vectorizer_ is not None:
            assert part_a.vocabulary_ == part_b.vocabulary_
            np.testing.assert_array_equal(
                part_a.vectorizer_.idf_, part_b.vectorizer_.idf_
            )
            # the analyzer is op_ngrams again, not the lists' identity
            assert part_a.vectorizer_.analyzer.func is part_b.vectorizer_.analyzer.func


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(_union, "_FIT_CHUNK", 7)


PARTS = [
    {},
    {"ngrams": OpNgramTfidf(min_df=2, max_features=40, sublinear_tf=True)},
    {"ngrams": OpNgramTfidf(ngram_range=(2, 3), type_classes=True, norm="l1")},
    {"opcodes": OpcodeCounter(min_count=3, max_features=10, normalize="l2")},
    {"ngrams": "drop"},
    {"opcodes": "drop", "shapes": "drop"},
]


@pytest.mark.parametrize("parts", PARTS, ids=range(len(PARTS)))
def test_streamed_fit_transform_equals_reading_everything(small_chunks, parts):
    docs = _corpus()
    streamed = MLIRFeaturizer(**parts)
    X = streamed.fit_transform(docs)
    whole = MLIRFeaturizer(**parts)
    Y = _reading_everything(whole, docs)
    assert X.shape == Y.shape and sparse.issparse(X) == sparse.issparse(Y)
    np.testing.assert_array_equal(_bits(X), _bits(Y))
    _assert_same_fit(streamed, whole)
    # and the fitted featurizers transform new documents alike
    new = [*TRANSFORM_DOCS, *docs[:40]]
    np.testing.assert_array_equal(
        _bits(streamed.transform(new)), _bits(whole.transform(new))
    )


def test_streamed_fit_transform_no_ops_at_all(small_chunks):
    docs = ["module {\n}\n"] * 9
    X = MLIRFeaturizer().fit_transform(docs)
    Y = _reading_everything(MLIRFeaturizer(), docs)
    np.testing.assert_array_equal(_bits(X), _bits(Y))


@pytest.mark.parametrize("on_error", ["ignore", "warn"])
def test_streamed_unreadable_documents(small_chunks, on_error):
    # unreadable documents in the first, second and last chunk (of 7)
    texts = _corpus(20)
    docs = [*texts[:2], JUNK, *texts[2:8], JUNK, *texts[8:], JUNK]
    with warnings.catch_warnings(record=True) as streamed_warnings:
        warnings.simplefilter("always")
        X = MLIRFeaturizer(on_error=on_error).fit_transform(docs)
    with warnings.catch_warnings(record=True) as whole_warnings:
        warnings.simplefilter("always")
        Y = _reading_everything(MLIRFeaturizer(on_error=on_error), docs)
    np.testing.assert_array_equal(_bits(X), _bits(Y))
    assert list(np.flatnonzero(X[:, -1].toarray())) == [2, 9, len(docs) - 1]
    messages = [str(w.message) for w in streamed_warnings]
    assert messages == [str(w.message) for w in whole_warnings]
    assert len(messages) == (3 if on_error == "warn" else 0)
    if messages:
        assert f"document {len(docs) - 1} " in messages[-1]


def test_streamed_raise_names_the_document(small_chunks):
    docs = [*_corpus(20), JUNK]
    with pytest.raises(MLIRSyntaxError) as info:
        MLIRFeaturizer().fit_transform(docs)
    assert f"while reading document {len(docs) - 1}" in info.value.__notes__


def test_streamed_nothing_readable(small_chunks):
    with pytest.raises(ValueError, match="none of the 9 documents"):
        MLIRFeaturizer(on_error="ignore").fit_transform([JUNK] * 9)
    with pytest.raises(ValueError, match="at least one"):
        MLIRFeaturizer().fit_transform([])


def test_streamed_keeps_one_chunk_of_parsed_modules(small_chunks, monkeypatch):
    """At most a chunk of parsed modules is alive at any time during the fit."""
    alive: list = []
    most = [0]
    read = _base._read_document

    class Tracked(ParsedModule):  # a ParsedModule that a weak reference can watch
        pass

    def counting(doc, input):
        module = read(doc, input)
        module = Tracked(**{f.name: getattr(module, f.name) for f in fields(module)})
        alive.append(weakref.ref(module))
        most[0] = max(most[0], sum(ref() is not None for ref in alive))
        return module

    monkeypatch.setattr(_base, "_read_document", counting)
    docs = _corpus(40)
    MLIRFeaturizer().fit_transform(docs)
    assert len(alive) == len(docs) > 14
    assert most[0] <= 7


def test_subclassed_part_reads_everything(small_chunks):
    class Doubled(OpcodeCounter):
        def _extract(self, modules):
            return 2 * super()._extract(modules)

    docs = DOCS * 4
    X = MLIRFeaturizer(opcodes=Doubled()).fit_transform(docs)
    plain = MLIRFeaturizer().fit_transform(docs)
    width = len(MLIRFeaturizer().fit(docs).transformers_[0][1]._feature_names())
    np.testing.assert_array_equal(
        X[:, :width].toarray(), 2 * plain[:, :width].toarray()
    )
    np.testing.assert_array_equal(
        _bits(X), _bits(MLIRFeaturizer(opcodes=Doubled()).fit(docs).transform(docs))
    )


# -- in joblib workers (n_jobs) ------------------------------------------------
@pytest.fixture
def small_tasks(monkeypatch):
    """Parallel fit_transform from 9 documents on, in tasks of at most 4."""
    monkeypatch.setattr(_base, "PARALLEL_CHUNK", 4)


@pytest.mark.parametrize("parts", PARTS[:4], ids=range(4))
def test_parallel_fit_transform_equals_one_process(small_tasks, parts):
    docs = _corpus(22)
    parallel = MLIRFeaturizer(n_jobs=2, **parts)
    X = parallel.fit_transform(docs)
    serial = MLIRFeaturizer(**parts)
    np.testing.assert_array_equal(_bits(X), _bits(serial.fit_transform(docs)))
    _assert_same_fit(parallel, serial)
    assert parallel.get_params()["n_jobs"] == 2
    new = [*TRANSFORM_DOCS, *docs[:5]]
    np.testing.assert_array_equal(
        _bits(parallel.transform(new)), _bits(serial.transform(new))
    )


@pytest.mark.parametrize("on_error", ["ignore", "warn", "raise"])
def test_parallel_fit_transform_unreadable_documents(small_tasks, on_error):
    # unreadable documents in the first, third and last task (of 4)
    texts = _corpus(14)
    docs = [*texts[:2], JUNK, *texts[2:8], JUNK, *texts[8:], JUNK]
    if on_error == "raise":
        with pytest.raises(MLIRSyntaxError) as info:
            MLIRFeaturizer(n_jobs=2).fit_transform(docs)
        assert "while reading document 2" in info.value.__notes__
        return
    with warnings.catch_warnings(record=True) as parallel_warnings:
        warnings.simplefilter("always")
        X = MLIRFeaturizer(on_error=on_error, n_jobs=2).fit_transform(docs)
    with warnings.catch_warnings(record=True) as serial_warnings:
        warnings.simplefilter("always")
        Y = MLIRFeaturizer(on_error=on_error).fit_transform(docs)
    np.testing.assert_array_equal(_bits(X), _bits(Y))
    assert list(np.flatnonzero(X[:, -1].toarray())) == [2, 9, len(docs) - 1]
    messages = [str(w.message) for w in parallel_warnings]
    assert messages == [str(w.message) for w in serial_warnings]
    assert len(messages) == (3 if on_error == "warn" else 0)


def test_parallel_tasks_split_by_documents_and_text(small_tasks, monkeypatch):
    monkeypatch.setattr(_union, "_WORKER_CHARS", 10)
    docs = ["abc"] * 6 + ["x" * 25, "ab", "ab", Path("a.mlir")] + ["a"] * 5
    spans = list(_union._spans(docs))
    # 3 + 3 + 3 chars fit in 10, a fourth would not; a larger document alone
    assert spans == [(0, 3), (3, 6), (6, 7), (7, 11), (11, 15)]
    assert [s for s, _ in spans] == [0, *[e for _, e in spans[:-1]]]
    assert spans[-1][1] == len(docs)
