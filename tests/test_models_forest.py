"""The compiled forest (fast path for a few rows) gives xgboost's predictions."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import Ridge
from xgboost import DMatrix, XGBRegressor

from mlircost_classic import load_dataset
from mlircost_classic.datasets import clip_to_domain
from mlircost_classic.featurize import MLIRFeaturizer
from mlircost_classic.models import CostModel, PriorRegressor, _cost_model
from mlircost_classic.models._forest import (
    CompiledForest,
    _order_keys,
    _trees,
    _ubjson,
    compile_forest,
)
from mlircost_classic.models._unwrap import unwrap


def small_xgb(**kw):
    return XGBRegressor(n_estimators=40, max_depth=5, learning_rate=0.2, n_jobs=1, **kw)


@pytest.fixture(scope="module")
def kernels():
    bunch = load_dataset("kernels")
    rng = np.random.default_rng(0)
    rows = rng.choice(len(bunch.data), size=160, replace=False)
    texts = [bunch.data[i] for i in rows]
    Y = bunch.target[rows]
    # Keep a mix: log-scale counts, NaN-holding columns, a signed-free small one.
    keep = [
        j
        for j, name in enumerate(bunch.target_names)
        if name.endswith((".instructions", ".registers", ".latency_us", ".occupancy"))
    ]
    return texts, Y[:, keep], [bunch.target_names[j] for j in keep]


@pytest.fixture(scope="module")
def fitted(kernels):
    texts, Y, names = kernels
    return CostModel(estimator=small_xgb(), random_state=0).fit(texts, Y, names)


def has_prior(estimator) -> bool:
    if isinstance(estimator, TransformedTargetRegressor):
        estimator = estimator.regressor_
    return isinstance(estimator, PriorRegressor)


def reference(model, texts, monkeypatch):
    """Predictions through xgboost itself (fast path off)."""
    monkeypatch.setattr(_cost_model, "FAST_PATH_ROWS", -1)
    try:
        return model.predict(texts)
    finally:
        monkeypatch.undo()


def test_forest_matches_xgboost_on_real_kernels(fitted, kernels, monkeypatch):
    texts, Y, names = kernels
    assert any(np.isnan(Y).any(axis=0)), "the sample should hold missing targets"
    assert any(fitted.log_targets_) and not all(fitted.log_targets_)
    # The default model is boosted from the roofline; the forest adds the prior.
    assert all(has_prior(e) for e in fitted.estimators_ if e is not None)
    F = fitted.featurizer_.transform(texts)
    forest = compile_forest(fitted.estimators_, F.shape[1])
    assert isinstance(forest, CompiledForest)
    # The model clips to the targets' domains (occupancy <= 1) after the forest.
    got = clip_to_domain(forest.predict(F), fitted.target_names_)
    ref = reference(fitted, texts, monkeypatch)
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-6)
    # One row at a time, as a compiler pass asks.
    for i in (0, 7, 99):
        np.testing.assert_allclose(
            fitted.predict(texts[i : i + 1])[0], ref[i], rtol=2e-5
        )


def test_forest_matches_xgboost_without_a_prior(kernels, monkeypatch):
    texts, Y, names = kernels
    plain = CostModel(estimator=small_xgb(), prior=None, random_state=0)
    plain.fit(texts[:80], Y[:80], names)
    assert not any(
        isinstance(getattr(e, "regressor_", e), PriorRegressor)
        for e in plain.estimators_
    )
    np.testing.assert_allclose(
        plain.predict(texts[80:100]),
        reference(plain, texts[80:100], monkeypatch),
        rtol=2e-5,
        atol=1e-6,
    )


def forest_calls(monkeypatch) -> list:
    """``(features, keywords)`` of each call of ``CompiledForest.predict`` from now on."""
    calls = []
    real = CompiledForest.predict
    monkeypatch.setattr(
        CompiledForest,
        "predict",
        lambda self, F, **kw: calls.append((F, kw)) or real(self, F, **kw),
    )
    return calls


def test_fast_path_is_used_for_few_rows(fitted, kernels, monkeypatch):
    texts, _, _ = kernels
    calls = forest_calls(monkeypatch)
    fitted.predict(texts[:3])
    assert [F.shape for F, _ in calls] == [(3, fitted.n_features_)]
    monkeypatch.setattr(_cost_model, "FAST_PATH_ROWS", 3)
    fitted.predict(texts[:3])
    fitted.predict(texts[:4])
    assert len(calls) == 2


def through_the_matrix(model, texts):
    """``predict`` as it was before the dense rows: transform's matrix, then the trees."""
    out = model._predict_features(model.featurizer_.transform(texts))
    return model._shaped(clip_to_domain(out, model.target_names_))


@pytest.mark.parametrize("n", [1, 3, 40])
def test_few_rows_predict_from_dense_rows_as_from_the_matrix(
    fitted, kernels, monkeypatch, n
):
    texts, _, _ = kernels
    calls = forest_calls(monkeypatch)
    got = fitted.predict(texts[:n])
    assert [(type(F), kw) for F, kw in calls] == [(np.ndarray, {"zeros_missing": True})]
    expected = through_the_matrix(fitted, texts[:n])
    np.testing.assert_array_equal(got, expected)


def test_dense_featurizer_keeps_zeros_as_values(kernels, monkeypatch):
    # Without the n-grams the features are an array whose zeros are values to
    # xgboost: the dense-rows path (zeros missing) must not take them.
    texts, Y, names = kernels
    model = CostModel(
        estimator=small_xgb(), featurizer=MLIRFeaturizer(ngrams="drop"), random_state=0
    ).fit(texts[:80], Y[:80], names)
    calls = forest_calls(monkeypatch)
    np.testing.assert_array_equal(
        model.predict(texts[80:83]), through_the_matrix(model, texts[80:83])
    )
    assert {"zeros_missing": True} not in [kw for _, kw in calls]
    np.testing.assert_allclose(
        model.predict(texts[80:83]),
        reference(model, texts[80:83], monkeypatch),
        rtol=2e-5,
    )


def test_intervals_agree_between_paths(kernels, monkeypatch):
    texts, Y, names = kernels
    model = CostModel(estimator=small_xgb(), intervals="conformal", random_state=1)
    model.fit(texts, Y, names)
    fast = model.predict_interval(texts[:5])
    monkeypatch.setattr(_cost_model, "FAST_PATH_ROWS", -1)
    slow = model.predict_interval(texts[:5])
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_dense_features_treat_zero_as_a_value(kernels, monkeypatch):
    # Without the sparse n-gram block the featurizer is dense: zeros are values.
    texts, Y, names = kernels
    model = CostModel(
        featurizer=MLIRFeaturizer(ngrams="drop"), estimator=small_xgb(), random_state=0
    ).fit(texts, Y, names)
    assert isinstance(model.featurizer_.transform(texts[:2]), np.ndarray)
    ref = reference(model, texts[:20], monkeypatch)
    got = np.vstack([model.predict([t]) for t in texts[:20]])
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("missing", [0.0, -1.0])
def test_one_row_path_honours_missing(kernels, monkeypatch, missing):
    # xgboost reads every value equal to `missing` as missing; so must the forest.
    texts, Y, names = kernels
    model = CostModel(
        featurizer=MLIRFeaturizer(ngrams="drop"),
        estimator=small_xgb(missing=missing),
        random_state=0,
    ).fit(texts, Y, names)
    ref = reference(model, texts[:20], monkeypatch)
    got = np.vstack([model.predict([t]) for t in texts[:20]])
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-6)


def test_forest_is_built_at_fit_and_predict_changes_nothing(fitted, kernels):
    texts, _, _ = kernels
    assert fitted._compiled_forest is not None
    before = dict(vars(fitted))
    fitted.predict(texts[:2])
    assert vars(fitted).keys() == before.keys()
    assert all(vars(fitted)[k] is v for k, v in before.items())


def test_different_missing_values_fall_back(kernels):
    texts, Y, names = kernels
    model = CostModel(estimator=small_xgb(), random_state=0).fit(texts, Y, names)
    unwrap(model.estimators_[0]).regressor.set_params(missing=0.0)
    assert compile_forest(model.estimators_, model.n_features_) is None


def test_trees_too_deep_to_pad_fall_back(fitted, monkeypatch):
    from mlircost_classic.models import _forest

    assert compile_forest(fitted.estimators_, fitted.n_features_) is not None
    monkeypatch.setattr(_forest, "_MAX_PADDING", 0)
    assert compile_forest(fitted.estimators_, fitted.n_features_) is None


def test_rows_in_blocks_predict_as_one_block(fitted, kernels, monkeypatch):
    # Rows are walked _ROWS_PER_WALK at a time, the last block short.
    from mlircost_classic.models import _forest

    texts, _, _ = kernels
    F = fitted.featurizer_.transform(texts[:45])
    forest = fitted._compiled_forest
    blocks = forest.margins(F)
    monkeypatch.setattr(_forest, "_ROWS_PER_WALK", 64)
    np.testing.assert_array_equal(blocks, forest.margins(F))


def test_target_without_rows_stays_nan(kernels):
    texts, Y, names = kernels
    Y = Y.copy()
    Y[:, 0] = np.nan
    with pytest.warns(UserWarning, match="no measured row"):
        model = CostModel(estimator=small_xgb(), random_state=0).fit(texts, Y, names)
    out = model.predict(texts[:2])
    assert np.isnan(out[:, 0]).all() and np.isfinite(out[:, 1:]).all()


def test_refit_recompiles(kernels):
    texts, Y, names = kernels
    model = CostModel(estimator=small_xgb(), random_state=0).fit(texts, Y, names)
    before = model.predict(texts[:1])
    model.fit(texts, Y * 2.0 + 1.0, names)
    after = model.predict(texts[:1])
    assert not np.allclose(before, after)


def test_unsupported_estimators_fall_back(kernels):
    texts, Y, names = kernels
    model = CostModel(estimator=Ridge(), random_state=0).fit(texts, Y, names)
    assert compile_forest(model.estimators_, model.n_features_) is None
    one = model.predict(texts[:1])
    assert one.shape == (1, len(names)) and np.isfinite(one).all()


def test_saved_and_loaded_model_predicts_the_same(fitted, kernels, tmp_path):
    texts, _, _ = kernels
    fitted.save(tmp_path / "m")
    loaded = CostModel.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict(texts[:4]), fitted.predict(texts[:4]))


def test_wrong_width_is_refused(fitted):
    forest = compile_forest(fitted.estimators_, fitted.n_features_)
    with pytest.raises(ValueError, match="features"):
        forest.predict(np.zeros((1, fitted.n_features_ + 1)))


def test_prior_columns_of_a_large_sparse_matrix(fitted, kernels, monkeypatch):
    # Past _DENSE_PRIOR_CELLS the prior's columns come from a CSC slice, not a
    # dense copy of the whole matrix: same margins either way.
    from mlircost_classic.models import _forest

    texts, _, _ = kernels
    F = fitted.featurizer_.transform(texts[:40])
    forest = compile_forest(fitted.estimators_, F.shape[1])
    dense_copy = forest.margins(F)
    monkeypatch.setattr(_forest, "_DENSE_PRIOR_CELLS", 0)
    np.testing.assert_allclose(forest.margins(F), dense_copy, rtol=1e-12)


def test_trees_that_are_one_leaf(kernels, monkeypatch):
    # A split no row can afford leaves every tree a single leaf (depth 0):
    # both branches of the walk must still read the leaf.
    texts, Y, names = kernels
    model = CostModel(
        estimator=small_xgb(min_child_weight=1e9), prior=None, random_state=0
    ).fit(texts[:60], Y[:60], names)
    forest = model._compiled_forest
    assert forest is not None and forest.depth == 0
    ref = reference(model, texts[60:64], monkeypatch)
    np.testing.assert_allclose(model.predict(texts[60:64]), ref, rtol=2e-5)
    np.testing.assert_allclose(model.predict(texts[60:61])[0], ref[0], rtol=2e-5)


def test_targets_predicted_in_threads_match_one_thread(fitted, kernels, monkeypatch):
    texts, _, _ = kernels
    one = reference(fitted, texts, monkeypatch)
    monkeypatch.setattr(fitted, "n_jobs", 2)
    calls = []
    real = XGBRegressor.predict
    monkeypatch.setattr(
        XGBRegressor,
        "predict",
        lambda self, X, **kw: (
            calls.append(threading.get_ident()) or real(self, X, **kw)
        ),
    )
    threaded = reference(fitted, texts, monkeypatch)
    np.testing.assert_array_equal(threaded, one)
    assert len(calls) == len(fitted.target_names_)
    assert set(calls) != {threading.get_ident()}, "no target left the main thread"


def xgboost_leaves(model, dense):
    """The leaf value xgboost routes each row to in every tree, forest order."""
    columns = []
    for estimator in model.estimators_:
        if estimator is None:
            continue
        booster = unwrap(estimator).regressor.get_booster()
        trees = _trees(booster)[0]
        nodes = booster.predict(DMatrix(dense, missing=np.nan), pred_leaf=True)
        nodes = nodes.reshape(len(dense), len(trees)).astype(np.intp)
        for t, tree in enumerate(trees):
            values = np.asarray(tree["split_conditions"], dtype=np.float32)
            columns.append(values[nodes[:, t]])
    return np.stack(columns, axis=1)


def test_leaves_are_xgboosts_at_thresholds_and_signed_zeros(fitted, kernels):
    # The walk compares threshold ranks, not values (_rank_splits): every row
    # must reach exactly xgboost's leaf, also where a value equals a split's
    # threshold, lies just below it, is -0.0 or is missing.
    texts, _, _ = kernels
    forest = fitted._compiled_forest
    F = fitted.featurizer_.transform(texts[:40])
    dense = F.toarray().astype(np.float32)
    dense[F.toarray() == 0] = np.nan  # entries not stored are missing
    trees = [
        tree
        for e in fitted.estimators_
        if e is not None
        for tree in _trees(unwrap(e).regressor.get_booster())[0]
    ]
    splits = [
        (f, np.float32(v))
        for tree in trees
        for f, v, left in zip(
            tree["split_indices"],
            tree["split_conditions"],
            tree["left_children"],
            strict=True,
        )
        if left >= 0
    ]
    rng = np.random.default_rng(0)
    rows = [dense]
    for shift in (0.0, -np.inf, np.inf):  # at, just below, just above
        edge = dense[rng.integers(len(dense), size=8)].copy()
        for row in edge:
            for k in rng.choice(len(splits), size=200):
                f, v = splits[k]
                row[f] = v if shift == 0.0 else np.nextafter(v, np.float32(shift))
        rows.append(edge)
    signed = dense[:8].copy()
    signed[np.isnan(signed)] = -0.0
    rows += [signed, -signed]
    X = np.vstack(rows)
    expected = xgboost_leaves(fitted, X)
    np.testing.assert_array_equal(forest._leaf_values(X), expected)
    for i in (0, 45, len(X) - 1):  # the one-row walk
        np.testing.assert_array_equal(forest._leaf_values(X[i : i + 1])[0], expected[i])


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_shallow_trees_reach_xgboosts_leaves(kernels, depth):
    # The last two levels and the leaves are walked in blocks
    # (CompiledForest._block_bottom): trees of depth 1 and 2 are all block,
    # depth 3 has one level above the blocks.
    texts, Y, names = kernels
    model = CostModel(
        estimator=XGBRegressor(n_estimators=20, max_depth=depth, n_jobs=1),
        prior=None,
        random_state=0,
    ).fit(texts[:80], Y[:80], names)
    forest = model._compiled_forest
    assert forest.depth == depth
    F = model.featurizer_.transform(texts[80:100])
    X = F.toarray().astype(np.float32)
    X[F.toarray() == 0] = np.nan  # entries not stored are missing
    expected = xgboost_leaves(model, X)
    np.testing.assert_array_equal(forest._leaf_values(X), expected)
    for i in (0, 7, len(X) - 1):  # the one-row walk
        np.testing.assert_array_equal(forest._leaf_values(X[i : i + 1])[0], expected[i])


def test_pickled_forest_predicts_the_same(fitted, kernels):
    texts, _, _ = kernels
    forest = fitted._compiled_forest
    F = fitted.featurizer_.transform(texts[:5])
    copy = pickle.loads(pickle.dumps(forest))
    np.testing.assert_array_equal(copy.margins(F), forest.margins(F))
    np.testing.assert_array_equal(copy.margins(F[:1]), forest.margins(F[:1]))


def test_order_keys_order_floats_as_less_than_does():
    # xgboost's splits sit between values, none at 0: the signed zeros, the
    # infinities and subnormals are checked on the keys themselves.
    tiny = np.finfo(np.float32).smallest_subnormal
    special = [0.0, -0.0, np.inf, -np.inf, tiny, -tiny, 1.0, -1.0, 3e38, -3e38]
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [special, rng.standard_normal(200), rng.standard_normal(50) * 1e-40]
    ).astype(np.float32)
    keys = _order_keys(values)
    np.testing.assert_array_equal(
        keys[:, None] < keys[None, :], values[:, None] < values[None, :]
    )
    np.testing.assert_array_equal(
        keys[:, None] == keys[None, :], values[:, None] == values[None, :]
    )


# -- the boosters' UBJSON ------------------------------------------------------
def _plain(value):
    """A decoded model in plain Python numbers (float32 values as floats)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(np.float32(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


KINDS = [
    {},
    {"max_depth": 0, "max_leaves": 5, "grow_policy": "lossguide"},
    {"n_estimators": 1, "base_score": 3.5},
]


@pytest.mark.parametrize("kw", KINDS, ids=range(len(KINDS)))
def test_ubjson_of_a_booster_is_its_json(kernels, kw):
    import json

    texts, Y, _ = kernels
    X = MLIRFeaturizer().fit_transform(texts)
    rows = ~np.isnan(Y[:, 0])
    params = {"n_estimators": 40, "max_depth": 5, "learning_rate": 0.2, "n_jobs": 1}
    regressor = XGBRegressor(**{**params, **kw}).fit(X[rows], Y[rows, 0])
    booster = regressor.get_booster()
    decoded = _ubjson(booster.save_raw("ubj"))
    tree = decoded["learner"]["gradient_booster"]["model"]["trees"][0]
    assert isinstance(tree["split_conditions"], np.ndarray)
    assert tree["split_conditions"].dtype == np.float32
    assert tree["left_children"].dtype == np.int32
    assert _plain(decoded) == _plain(json.loads(bytes(booster.save_raw("json"))))


def test_ubjson_reads_every_marker_and_refuses_junk():
    L = lambda n: b"L" + n.to_bytes(8, "big")  # noqa: E731 - an int64 length
    doc = (
        b"{"
        + L(1)
        + b"a"
        + b"["
        + b"T"
        + b"F"
        + b"Z"
        + b"Cx"
        + b"i\xff"
        + b"U\xff"
        + b"I\x01\x00"
        + b"l\xff\xff\xff\xfe"
        + b"d\x3f\x80\x00\x00"
        + b"D\x40\x00\x00\x00\x00\x00\x00\x00"
        + b"Si\x02h\xc3"
        + b"]"
        + L(1)
        + b"b"
        + b"[#U\x02"
        + b"Si\x00"
        + b"{}"
        + L(1)
        + b"c"
        + b"[$I#U\x02\x00\x01\x01\x00"
        + L(1)
        + b"d"
        + b"{#U\x01"
        + b"U\x01k"
        + b"i\x07"
        + b"}"
    )
    decoded = _ubjson(doc.replace(b"h\xc3", b"hi"))
    assert decoded["a"] == [True, False, None, "x", -1, 255, 256, -2, 1.0, 2.0, "hi"]
    assert decoded["b"] == ["", {}]
    assert decoded["c"].tolist() == [1, 256] and decoded["c"].dtype == np.int16
    assert decoded["d"] == {"k": 7}
    for junk in (
        doc,  # an invalid UTF-8 string
        doc[:-1],  # no closing brace
        doc + b"Z",  # data after the end
        b"{" + L(1) + b"a" + b"[$d#L" + (10**6).to_bytes(8, "big") + b"}",
        b"{" + L(1) + b"a" + b"Q}",  # no such marker
        b"[$U" + b"\x00",  # a typed container without a count
        b"",
    ):
        with pytest.raises(ValueError):
            _ubjson(junk)


def test_forest_from_json_when_ubjson_fails(fitted, kernels, monkeypatch):
    from mlircost_classic.models import _forest

    texts = kernels[0][:5]
    before = fitted.predict(texts)

    def refuse(data):
        raise ValueError("no")

    monkeypatch.setattr(_forest, "_ubjson", refuse)
    fitted._compile()
    try:
        np.testing.assert_array_equal(fitted.predict(texts), before)
    finally:
        monkeypatch.undo()
        fitted._compile()
