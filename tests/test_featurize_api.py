"""The sklearn contract of the MLIR featurizers, bad input, and composition.

``check_estimator`` runs no common checks on estimators that take raw text, so
the contract is checked here by hand (see STYLE.md).
"""

import gc
import pickle
import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline

from mlircost_classic.featurize import (
    MLIRFeaturizer,
    MLIRReadWarning,
    OpcodeCounter,
    OpNgramTfidf,
    ShapeFeatures,
)
from mlircost_classic.mlir import MLIRSyntaxError

MATMUL = """
func.func @mm(%a: tensor<8x4xf32>, %b: tensor<4x16xf32>) -> tensor<8x16xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8x16xf32>
  %c = linalg.fill ins(%cst : f32) outs(%e : tensor<8x16xf32>) -> tensor<8x16xf32>
  %0 = linalg.matmul ins(%a, %b : tensor<8x4xf32>, tensor<4x16xf32>)
                     outs(%c : tensor<8x16xf32>) -> tensor<8x16xf32>
  return %0 : tensor<8x16xf32>
}
"""
ELEMENTWISE = """
func.func @add(%a: tensor<64xf16>, %b: tensor<64xf16>) -> tensor<64xf16> {
  %0 = arith.addf %a, %b : tensor<64xf16>
  %1 = math.exp %0 : tensor<64xf16>
  return %1 : tensor<64xf16>
}
"""
LOOPS = """
func.func @loops(%m: memref<128x10xf32>) {
  affine.for %i = 0 to 128 step 4 {
    affine.for %j = 0 to 10 {
      %v = affine.load %m[%i, %j] : memref<128x10xf32>
      %w = arith.addf %v, %v : f32
      affine.store %w, %m[%i, %j] : memref<128x10xf32>
    }
  }
  return
}
"""
CONV = """
func.func @conv(%x: tensor<1x3x32x32xf32>, %w: tensor<8x3x3x3xf32>,
                %o: tensor<1x8x15x15xf32>) -> tensor<1x8x15x15xf32> {
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>,
                                 strides = dense<2> : tensor<2xi64>}
       ins(%x, %w : tensor<1x3x32x32xf32>, tensor<8x3x3x3xf32>)
       outs(%o : tensor<1x8x15x15xf32>) -> tensor<1x8x15x15xf32>
  return %0 : tensor<1x8x15x15xf32>
}
"""
DOCS = [MATMUL, ELEMENTWISE, LOOPS, CONV]
BAD = "func.func @f( {{{ this is not mlir }}}"

FEATURIZERS = [
    OpcodeCounter(),
    OpcodeCounter(min_count=2, log_scale=True, normalize="l1"),
    OpNgramTfidf(),
    OpNgramTfidf(ngram_range=(1, 3), type_classes=True, sublinear_tf=True),
    ShapeFeatures(),
    ShapeFeatures(log_scale=False),
    MLIRFeaturizer(),
    MLIRFeaturizer(ngrams="drop", shapes=ShapeFeatures(log_scale=False)),
]
IDS = [f"{type(f).__name__}-{i}" for i, f in enumerate(FEATURIZERS)]


def dense(X):
    return X.toarray() if sparse.issparse(X) else np.asarray(X)


@pytest.fixture(params=FEATURIZERS, ids=IDS)
def featurizer(request):
    return clone(request.param)


def test_init_only_assigns_and_params_round_trip(featurizer):
    params = featurizer.get_params(deep=False)
    again = type(featurizer)(**params)
    assert again.get_params(deep=False).keys() == params.keys()
    cloned = clone(featurizer)
    assert cloned is not featurizer
    assert not any(k.endswith("_") and not k.startswith("_") for k in vars(cloned))
    first = next(iter(params))
    assert featurizer.set_params(**{first: params[first]}) is featurizer


def test_fit_returns_self_and_learned_state_ends_in_underscore(featurizer):
    assert featurizer.fit(DOCS) is featurizer
    assert featurizer.parse_error_column_ is False


def test_fit_transform_equals_fit_then_transform(featurizer):
    a = dense(clone(featurizer).fit_transform(DOCS))
    b = dense(clone(featurizer).fit(DOCS).transform(DOCS))
    np.testing.assert_allclose(a, b)


def test_deterministic(featurizer):
    a = dense(clone(featurizer).fit_transform(DOCS))
    b = dense(clone(featurizer).fit_transform(list(DOCS)))
    np.testing.assert_array_equal(a, b)


def test_as_many_feature_names_as_columns(featurizer):
    X = featurizer.fit_transform(DOCS)
    names = featurizer.get_feature_names_out()
    assert names.dtype == object
    assert len(names) == X.shape[1]
    assert len(set(names)) == len(names)
    assert X.shape[0] == len(DOCS)


def test_pickle_round_trip(featurizer):
    featurizer.fit(DOCS)
    again = pickle.loads(pickle.dumps(featurizer))
    np.testing.assert_array_equal(
        dense(again.transform(DOCS)), dense(featurizer.transform(DOCS))
    )
    np.testing.assert_array_equal(
        again.get_feature_names_out(), featurizer.get_feature_names_out()
    )


def test_every_document_with_ops_gives_a_nonzero_row(featurizer):
    X = dense(featurizer.fit_transform(DOCS))
    assert (np.abs(X).sum(axis=1) > 0).all()


def test_unfitted_transform_raises(featurizer):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        featurizer.transform(DOCS)


@pytest.mark.parametrize("cls", [OpcodeCounter, ShapeFeatures])
def test_pandas_output_for_dense_featurizers(cls):
    pd = pytest.importorskip("pandas")
    featurizer = cls().set_output(transform="pandas")
    frame = featurizer.fit_transform(DOCS)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(featurizer.get_feature_names_out())
    pd.testing.assert_frame_equal(frame, featurizer.transform(DOCS))


def test_pandas_output_for_dense_union():
    pd = pytest.importorskip("pandas")
    union = MLIRFeaturizer(ngrams="drop").set_output(transform="pandas")
    assert isinstance(union.fit_transform(DOCS), pd.DataFrame)


def test_ngram_output_is_sparse_and_names_are_readable():
    tfidf = OpNgramTfidf(ngram_range=(2, 2))
    X = tfidf.fit_transform(DOCS)
    assert sparse.issparse(X)
    names = list(tfidf.get_feature_names_out())
    assert "ngram linalg.fill linalg.matmul" in names
    with_types = OpNgramTfidf(ngram_range=(1, 1), type_classes=True).fit(DOCS)
    assert "ngram linalg.matmul:f32x2" in list(with_types.get_feature_names_out())


def test_ngram_uses_tfidf_parameters():
    tfidf = OpNgramTfidf(ngram_range=(1, 1), min_df=2, use_idf=False, norm=None)
    X = dense(tfidf.fit_transform(DOCS))
    names = list(tfidf.get_feature_names_out())
    assert "ngram linalg.matmul" not in names  # in one document only
    assert X[0, names.index("ngram func.func")] == 1.0
    assert tfidf.vectorizer_.min_df == 2


def test_opcode_vocabulary_and_unseen_bucket():
    counter = OpcodeCounter().fit([ELEMENTWISE])
    names = list(counter.get_feature_names_out())
    assert "op arith.addf" in names and "op linalg.matmul" not in names
    row = counter.transform([MATMUL])[0]
    assert row[names.index("op <unseen>")] >= 3  # fill, matmul, empty, constant
    assert row[names.index("dialect <unseen>")] >= 3  # linalg + tensor ops
    assert row[names.index("op func.func")] == 1
    # Dialect counts include ops outside the vocabulary.
    assert row[names.index("dialect arith")] == 1  # arith.constant (unseen op)


def test_opcode_min_count_max_features_and_normalize():
    counter = OpcodeCounter(max_features=2).fit(DOCS)
    assert len(counter.vocabulary_) == 2
    assert "func.func" in counter.vocabulary_
    l1 = OpcodeCounter(normalize="l1").fit(DOCS)
    X = l1.transform(DOCS)
    n_ops = len(l1.vocabulary_) + 1
    np.testing.assert_allclose(X[:, :n_ops].sum(axis=1), 1.0)
    np.testing.assert_allclose(X[:, n_ops:].sum(axis=1), 1.0)
    logged = OpcodeCounter(log_scale=True).fit(DOCS)
    plain = OpcodeCounter().fit(DOCS)
    np.testing.assert_allclose(logged.transform(DOCS), np.log1p(plain.transform(DOCS)))


def test_shape_features_on_text():
    shapes = ShapeFeatures().fit(DOCS)
    names = list(shapes.get_feature_names_out())
    X = shapes.transform(DOCS)
    assert X[0, names.index("matmul FLOPs")] == 2 * 8 * 16 * 4
    assert X[0, names.index("log1p matmul FLOPs")] == pytest.approx(np.log1p(1024))
    assert X[1, names.index("bytes f16")] > 0
    assert X[2, names.index("loop nest depth")] == 2
    assert X[2, names.index("loop iterations max")] == 320
    assert X[3, names.index("conv FLOPs")] == 2 * 8 * 15 * 15 * 27
    assert X[3, names.index("conv stride max")] == 2


def test_union_parts_and_names():
    union = MLIRFeaturizer().fit(DOCS)
    names = list(union.get_feature_names_out())
    assert any(n.startswith("opcodes__op ") for n in names)
    assert any(n.startswith("ngrams__ngram ") for n in names)
    assert "shapes__matmul FLOPs" in names
    assert [name for name, _ in union.transformers_] == ["opcodes", "ngrams", "shapes"]
    only = MLIRFeaturizer(opcodes="drop", ngrams="drop").fit(DOCS)
    assert [name for name, _ in only.transformers_] == ["shapes"]
    np.testing.assert_array_equal(
        only.transform(DOCS), ShapeFeatures().fit_transform(DOCS)
    )
    with pytest.raises(ValueError, match="all parts are dropped"):
        MLIRFeaturizer(opcodes="drop", ngrams="drop", shapes="drop").fit(DOCS)


def test_union_does_not_fit_the_given_parts():
    part = OpcodeCounter()
    MLIRFeaturizer(opcodes=part).fit(DOCS)
    assert not hasattr(part, "vocabulary_")


def test_union_reads_each_document_once(monkeypatch):
    from mlircost_classic.featurize import _base

    calls = []
    real = _base.parse
    monkeypatch.setattr(_base, "parse", lambda text: calls.append(1) or real(text))
    MLIRFeaturizer().fit_transform(DOCS)
    assert len(calls) == len(DOCS)


# -- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    "cls", [OpcodeCounter, OpNgramTfidf, ShapeFeatures, MLIRFeaturizer]
)
def test_bare_string_is_rejected(cls):
    with pytest.raises(ValueError, match="string object received"):
        cls().fit(MATMUL)
    fitted = cls().fit(DOCS)
    with pytest.raises(ValueError, match="string object received"):
        fitted.transform(MATMUL)


@pytest.mark.parametrize("X", [None, 3])
def test_non_iterable_is_rejected(X):
    with pytest.raises(TypeError, match="iterable of MLIR documents"):
        OpcodeCounter().fit(X)


def test_no_documents_is_rejected():
    with pytest.raises(ValueError, match="at least one"):
        ShapeFeatures().fit([])


def test_invalid_parameters_list_valid_choices():
    with pytest.raises(ValueError, match="on_error") as info:
        OpcodeCounter(on_error="skip").fit(DOCS)
    assert all(
        choice in str(info.value) for choice in ("'raise'", "'warn'", "'ignore'")
    )
    with pytest.raises(ValueError, match="input"):
        ShapeFeatures(input="file").fit(DOCS)
    with pytest.raises(ValueError, match="normalize"):
        OpcodeCounter(normalize="max").fit(DOCS)
    with pytest.raises(ValueError, match="ngram_range"):
        OpNgramTfidf(ngram_range=(2, 1)).fit(DOCS)


@pytest.mark.parametrize("doc", [None, b"\x00\xff\xfe binary junk \x00", BAD])
def test_unreadable_document_raises_by_default(doc):
    with pytest.raises((TypeError, ValueError)):
        ShapeFeatures().fit_transform([MATMUL, doc])


def test_syntax_error_is_the_readers():
    with pytest.raises(MLIRSyntaxError):
        OpcodeCounter().fit([BAD])


def test_empty_string_is_refused_or_flagged():
    # The reader treats an empty document as an upstream mistake.
    shapes = ShapeFeatures().fit(DOCS)
    with pytest.raises(ValueError, match="empty MLIR"):
        shapes.transform(["  "])
    X = ShapeFeatures(on_error="ignore").fit(DOCS).transform(["", MATMUL])
    assert X[0, -1] == 1 and not X[0, :-1].any()
    assert X[1, -1] == 0


def test_bytes_documents_are_read():
    a = ShapeFeatures().fit_transform([MATMUL])
    b = ShapeFeatures().fit_transform([MATMUL.encode()])
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "cls", [OpcodeCounter, OpNgramTfidf, ShapeFeatures, MLIRFeaturizer]
)
def test_on_error_ignore_gives_zero_row_and_flag(cls):
    featurizer = cls(on_error="ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        X = dense(featurizer.fit_transform([*DOCS, BAD, None]))
    names = list(featurizer.get_feature_names_out())
    assert names[-1] == "parse_error"
    assert len(names) == X.shape[1]
    np.testing.assert_array_equal(X[:, -1], [0, 0, 0, 0, 1, 1])
    assert not X[4:, :-1].any()
    clean = dense(cls().fit_transform(DOCS))
    np.testing.assert_allclose(X[:4, :-1], clean)


def test_on_error_warn_warns_per_document():
    with pytest.warns(MLIRReadWarning, match="document 1"):
        X = OpcodeCounter(on_error="warn").fit_transform([MATMUL, BAD])
    assert X[1, -1] == 1


def test_all_documents_unreadable_cannot_fit():
    with pytest.raises(ValueError, match="none of the 2 documents"):
        OpcodeCounter(on_error="ignore").fit([BAD, None])


def test_filenames(tmp_path):
    paths = []
    for i, doc in enumerate(DOCS):
        path = tmp_path / f"{i}.mlir"
        path.write_text(doc)
        paths.append(str(path))
    by_name = ShapeFeatures(input="filename").fit_transform(paths)
    np.testing.assert_array_equal(by_name, ShapeFeatures().fit_transform(DOCS))
    missing = str(tmp_path / "missing.mlir")
    with pytest.raises(OSError):
        ShapeFeatures(input="filename").fit([paths[0], missing])
    X = ShapeFeatures(input="filename", on_error="ignore").fit_transform(
        [paths[0], missing]
    )
    assert X[1, -1] == 1


def test_parallel_reading_matches_serial():
    a = MLIRFeaturizer(n_jobs=2).fit_transform(DOCS * 2)
    b = MLIRFeaturizer().fit_transform(DOCS * 2)
    np.testing.assert_allclose(dense(a), dense(b))


# -- composition --------------------------------------------------------------

y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])


def test_pipeline_and_feature_union():
    from sklearn.linear_model import Ridge

    pipe = make_pipeline(MLIRFeaturizer(), Ridge())
    pipe.fit(DOCS * 2, y)
    assert pipe.predict(DOCS).shape == (4,)
    union = FeatureUnion([("ops", OpcodeCounter()), ("shapes", ShapeFeatures())])
    X = union.fit_transform(DOCS)
    assert X.shape[1] == len(union.get_feature_names_out())
    assert "shapes__matmul FLOPs" in union.get_feature_names_out()


def test_column_transformer_on_a_pandas_column():
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer

    frame = pd.DataFrame({"ir": DOCS, "batch": [1, 2, 4, 8]})
    ct = ColumnTransformer(
        [("shapes", ShapeFeatures(), "ir"), ("ops", OpcodeCounter(), ["ir"])],
        remainder="passthrough",
    )
    X = ct.fit_transform(frame)
    n_shapes = len(ShapeFeatures().fit(DOCS).get_feature_names_out())
    n_ops = len(OpcodeCounter().fit(DOCS).get_feature_names_out())
    assert X.shape == (4, n_shapes + n_ops + 1)
    np.testing.assert_array_equal(X[:, -1], [1, 2, 4, 8])
    assert "shapes__matmul FLOPs" in ct.get_feature_names_out()


def test_grid_search_with_xgboost():
    xgboost = pytest.importorskip("xgboost")
    from sklearn.model_selection import GridSearchCV

    pipe = Pipeline(
        [
            ("features", MLIRFeaturizer()),
            ("model", xgboost.XGBRegressor(n_estimators=3, max_depth=2, n_jobs=1)),
        ]
    )
    grid = GridSearchCV(
        pipe,
        {
            "features__shapes": [ShapeFeatures(), ShapeFeatures(log_scale=False)],
            "features__ngrams": ["drop", OpNgramTfidf(ngram_range=(1, 1))],
        },
        cv=2,
        n_jobs=2,
    )
    grid.fit(DOCS * 2, y)
    assert grid.predict(DOCS).shape == (4,)
    assert len(grid.cv_results_["params"]) == 4


@pytest.mark.parametrize("enabled", [True, False])
def test_reading_leaves_the_garbage_collector_as_it_was(enabled):
    # reading a batch pauses the cyclic collector, and only for the reading
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        MLIRFeaturizer().fit_transform([MATMUL, MATMUL])
        assert gc.isenabled() is enabled
        with pytest.raises(MLIRSyntaxError):
            MLIRFeaturizer().fit_transform([MATMUL, "func.func @f() {"])
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_featurizing_a_batch_runs_with_the_collector_paused(monkeypatch):
    # The rows are computed while the batch's records are young: a collection
    # then would walk them all and free nothing.
    seen = []
    real = ShapeFeatures._extract
    monkeypatch.setattr(
        ShapeFeatures,
        "_extract",
        lambda self, modules: seen.append(gc.isenabled()) or real(self, modules),
    )
    was = gc.isenabled()
    gc.enable()
    try:
        featurizer = MLIRFeaturizer()
        featurizer.fit_transform([MATMUL, ELEMENTWISE])
        featurizer.transform([MATMUL, ELEMENTWISE])
        assert seen == [False, False] and gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
