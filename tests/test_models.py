"""CostModel and RooflineBaseline: the sklearn contract, targets, intervals, saving.

``parametrize_with_checks`` does not apply to estimators that take raw text, so
the contract is checked here by hand. The MLIR texts are small hand-written
functions; the numeric labels are made up for these API tests only.
"""

import json
import pickle
import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import HuberRegressor, Ridge, RidgeCV
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from xgboost import XGBRegressor

from mlircost_classic.featurize import (
    MLIRFeaturizer,
    OpcodeCounter,
    OpNgramTfidf,
    ShapeFeatures,
    _union,
)
from mlircost_classic.models import (
    FORMAT_VERSION,
    CostModel,
    PriorRegressor,
    RooflineBaseline,
    _cost_model,
    featurizer_from_dict,
    featurizer_to_dict,
)
from mlircost_classic.models._cost_model import _conformal_quantile
from mlircost_classic.models._unwrap import unwrap


def elementwise(n: int, op: str = "arith.addf") -> str:
    return f"""func.func @f(%a: tensor<{n}xf32>) -> tensor<{n}xf32> {{
  %0 = {op} %a, %a : tensor<{n}xf32>
  return %0 : tensor<{n}xf32>
}}"""


def matmul(m: int, k: int, n: int) -> str:
    return f"""func.func @mm(%a: tensor<{m}x{k}xf32>, %b: tensor<{k}x{n}xf32>,
                %c: tensor<{m}x{n}xf32>) -> tensor<{m}x{n}xf32> {{
  %0 = linalg.matmul ins(%a, %b : tensor<{m}x{k}xf32>, tensor<{k}x{n}xf32>)
                     outs(%c : tensor<{m}x{n}xf32>) -> tensor<{m}x{n}xf32>
  return %0 : tensor<{m}x{n}xf32>
}}"""


UNSEEN = """func.func @g(%a: tensor<16xf32>) -> tensor<16xf32> {
  %0 = math.tanh %a : tensor<16xf32>
  %1 = math.sqrt %0 : tensor<16xf32>
  return %1 : tensor<16xf32>
}"""

TEXTS = (
    [elementwise(2**i) for i in range(2, 10)]
    + [elementwise(2**i, "arith.mulf") for i in range(2, 10)]
    + [matmul(2**i, 8, 2**i) for i in range(1, 9)]
)


def made_up_targets(n: int = len(TEXTS)) -> np.ndarray:
    """Two made-up label columns: a skewed positive one and a signed one."""
    rng = np.random.default_rng(0)
    return np.column_stack([np.exp(rng.normal(5, 2, n)), rng.normal(0, 1, n)])


IDENTITY = FunctionTransformer()
TEXTS_Y = np.log1p(np.arange(len(TEXTS), dtype=float))


# -- sklearn contract ---------------------------------------------------------
def test_clone_and_params_round_trip():
    model = CostModel(estimator=Ridge(alpha=3.0), log_target=False, random_state=1)
    copy = clone(model)
    assert copy.get_params()["estimator__alpha"] == 3.0
    assert copy.estimator is not model.estimator
    copy.set_params(estimator__alpha=0.5, confidence=0.8)
    assert copy.estimator.alpha == 0.5 and copy.confidence == 0.8


def test_featurizer_and_estimator_are_cloned_not_shared():
    featurizer = MLIRFeaturizer(ngrams="drop")
    estimator = Ridge()
    model = CostModel(featurizer=featurizer, estimator=estimator).fit(
        TEXTS, made_up_targets()
    )
    assert model.featurizer_ is not featurizer
    assert not hasattr(featurizer, "transformers_")
    assert not hasattr(estimator, "coef_")
    assert model.estimators_[0] is not model.estimators_[1]


def test_fit_predict_shapes_and_names():
    Y = made_up_targets()
    model = CostModel(random_state=0).fit(TEXTS, Y, target_names=["a.x", "b.y"])
    assert model.target_names_ == ["a.x", "b.y"]
    assert model.predict(TEXTS[:5]).shape == (5, 2)
    single = CostModel(random_state=0).fit(TEXTS, Y[:, 0])
    assert single.predict(TEXTS[:5]).shape == (5,)
    assert single.target_names_ == ["target0"]


def test_target_names_from_dataframe():
    pd = pytest.importorskip("pandas")
    Y = pd.DataFrame(made_up_targets(), columns=["cpu.instructions", "gpu.regs"])
    model = CostModel(estimator=Ridge()).fit(TEXTS, Y)
    assert model.target_names_ == ["cpu.instructions", "gpu.regs"]


def test_nan_target_rows_are_skipped():
    # A mean regressor predicts the mean of exactly the rows it was fitted on.
    Y = made_up_targets()
    Y[:6, 1] = np.nan
    model = CostModel(estimator=DummyRegressor(), log_target=False, prior=None).fit(
        TEXTS, Y
    )
    pred = model.predict(TEXTS[:2])
    np.testing.assert_allclose(pred[:, 0], Y[:, 0].mean())
    np.testing.assert_allclose(pred[:, 1], Y[6:, 1].mean())


def test_target_without_rows_warns_and_predicts_nan():
    Y = made_up_targets()
    Y[:, 1] = np.nan
    with pytest.warns(UserWarning, match="no measured row"):
        model = CostModel(estimator=Ridge()).fit(TEXTS, Y)
    pred = model.predict(TEXTS[:3])
    assert np.isnan(pred[:, 1]).all() and np.isfinite(pred[:, 0]).all()
    assert model.estimators_[1] is None


def test_predict_on_unseen_ops():
    model = CostModel(random_state=0).fit(TEXTS, made_up_targets())
    pred = model.predict([UNSEEN])
    assert pred.shape == (1, 2) and np.isfinite(pred).all()


def test_deterministic_with_random_state():
    Y = made_up_targets()
    first = CostModel(random_state=7).fit(TEXTS, Y).predict(TEXTS)
    second = CostModel(random_state=7).fit(TEXTS, Y).predict(TEXTS)
    np.testing.assert_array_equal(first, second)


def test_log_target_auto_picks_skewed_non_negative_targets():
    Y = made_up_targets()
    model = CostModel(estimator=Ridge()).fit(TEXTS, Y)
    assert model.log_targets_ == [True, False]
    assert isinstance(model.estimators_[0], TransformedTargetRegressor)
    assert not isinstance(model.estimators_[1], TransformedTargetRegressor)
    flat = np.column_stack([np.linspace(1, 2, len(TEXTS))])
    assert CostModel(estimator=Ridge()).fit(TEXTS, flat).log_targets_ == [False]


def test_log_target_true_refuses_negative_targets():
    with pytest.raises(ValueError, match="non-negative"):
        CostModel(estimator=Ridge(), log_target=True).fit(TEXTS, made_up_targets())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_linear_estimators_get_a_sparse_safe_scaler():
    Y = made_up_targets()
    for estimator in (Ridge(), HuberRegressor()):
        model = CostModel(estimator=estimator, log_target=False).fit(TEXTS, Y)
        prior = model.estimators_[0]
        assert isinstance(prior, PriorRegressor)  # boosted from the roofline
        pipeline = prior.regressor_
        assert isinstance(pipeline, Pipeline)
        assert isinstance(pipeline[0], StandardScaler) and not pipeline[0].with_mean
    xgb = CostModel(log_target=False, random_state=0, prior=None).fit(TEXTS, Y)
    assert isinstance(xgb.estimators_[0], XGBRegressor)


def test_estimator_without_sparse_support_gets_dense_features():
    model = CostModel(estimator=HistGradientBoostingRegressor(max_iter=5)).fit(
        TEXTS, made_up_targets()
    )
    assert sparse.issparse(model.featurizer_.transform(TEXTS[:1]))
    assert np.isfinite(model.predict(TEXTS[:3])).all()


def test_pickle_round_trip():
    model = CostModel(random_state=0).fit(TEXTS, made_up_targets())
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.predict(TEXTS), model.predict(TEXTS))


def test_grid_search():
    y = made_up_targets()[:, 1]
    search = GridSearchCV(
        CostModel(estimator=Ridge()), {"estimator__alpha": [0.1, 10.0]}, cv=2
    ).fit(TEXTS, y)
    assert search.best_params_["estimator__alpha"] in (0.1, 10.0)
    assert search.predict(TEXTS[:2]).shape == (2,)


@pytest.mark.parametrize(
    ("kwargs", "y", "match"),
    [
        ({}, np.ones(len(TEXTS) - 1), "documents but y has"),
        ({}, np.full(len(TEXTS), np.inf), "infinite"),
        ({"target_names": ["a", "b", "c"]}, made_up_targets(), "3 target names"),
        ({"target_names": ["a", "a"]}, made_up_targets(), "not unique"),
        ({}, np.ones((len(TEXTS), 1, 1)), "1-D or 2-D"),
    ],
)
def test_bad_targets_are_refused(kwargs, y, match):
    with pytest.raises(ValueError, match=match):
        CostModel(estimator=Ridge()).fit(TEXTS, y, **kwargs)


def test_bad_input_is_refused():
    model = CostModel(estimator=Ridge()).fit(TEXTS, made_up_targets())
    with pytest.raises(ValueError, match="string object received"):
        model.predict(TEXTS[0])
    with pytest.raises(ValueError, match="intervals"):
        CostModel(intervals="bootstrap").fit(TEXTS, made_up_targets())
    with pytest.raises(ValueError, match="intervals='conformal'"):
        model.predict_interval(TEXTS[:1])


# -- conformal intervals ------------------------------------------------------
def test_conformal_quantile():
    scores = np.arange(1.0, 10.0)  # 9 scores
    assert _conformal_quantile(scores, 0.9) == 9.0  # ceil(10 * 0.9) = 9th
    assert _conformal_quantile(scores, 0.5) == 5.0  # ceil(10 * 0.5) = 5th
    assert _conformal_quantile(scores[:5], 0.9) == np.inf  # ceil(6 * 0.9) > 5


def test_conformal_intervals_from_calibration_residuals():
    # Numeric features through an identity featurizer: y = 3x + noise with a
    # known largest residual, so the calibrated half-width is known.
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, size=(200, 1))
    y = 3 * x[:, 0] + rng.uniform(-1, 1, size=200)
    model = CostModel(
        featurizer=IDENTITY,
        estimator=Ridge(alpha=1e-6),
        log_target=False,
        intervals="conformal",
        confidence=0.9,
        random_state=0,
    ).fit(x, y)
    (q,) = model.conformal_quantiles_
    assert 0.7 < q < 1.1  # the 90% quantile of |uniform(-1, 1)| is 0.9
    lower, upper = model.predict_interval(x[:5])
    np.testing.assert_allclose(upper - lower, 2 * q)
    assert ((lower <= model.predict(x[:5])) & (model.predict(x[:5]) <= upper)).all()


@pytest.mark.parametrize("fast_path", [True, False])
def test_interval_call_returns_the_prediction_too(fast_path, monkeypatch):
    if not fast_path:
        monkeypatch.setattr(_cost_model, "FAST_PATH_ROWS", -1)
    model = CostModel(intervals="conformal", random_state=0).fit(
        TEXTS, made_up_targets()
    )
    point, lower, upper = model.predict_interval(TEXTS[:4], return_prediction=True)
    np.testing.assert_allclose(point, model.predict(TEXTS[:4]), rtol=1e-9)
    bounds = model.predict_interval(TEXTS[:4])
    np.testing.assert_array_equal(lower, bounds[0])
    np.testing.assert_array_equal(upper, bounds[1])
    assert (lower <= point).all() and (point <= upper).all()


def test_log_target_predictions_are_never_negative():
    # Ridge on log1p(y) extrapolates to a negative margin; expm1 of it would be < 0.
    x = np.linspace(0.0, 1.0, 200)[:, None]  # enough rows for a finite quantile
    model = CostModel(
        featurizer=IDENTITY,
        estimator=Ridge(alpha=1e-6),
        log_target=True,
        intervals="conformal",
        random_state=0,
    ).fit(x, np.expm1(x[:, 0]))
    far = np.array([[-5.0]])
    assert model.predict(far)[0] == 0.0
    point, lower, upper = model.predict_interval(far, return_prediction=True)
    # The whole interval lies below 0 on the log scale: every bound stops at 0.
    assert model.conformal_quantiles_[0] < 1.0
    assert point[0] == 0.0 and lower[0] == 0.0 and upper[0] == 0.0


def test_log_target_intervals_are_multiplicative():
    rng = np.random.default_rng(2)
    x = rng.uniform(1, 5, size=(100, 1))
    y = np.expm1(x[:, 0] + rng.uniform(-0.2, 0.2, size=100))
    model = CostModel(
        featurizer=IDENTITY,
        estimator=Ridge(alpha=1e-6),
        log_target=True,
        intervals="conformal",
        random_state=0,
    ).fit(x, y)
    lower, upper = model.predict_interval(x[:5])
    np.testing.assert_allclose(
        np.log1p(upper) - np.log1p(lower), 2 * model.conformal_quantiles_[0]
    )


# -- roofline prior -----------------------------------------------------------
def test_roofline_prior_extrapolates_beyond_the_training_sizes():
    # Cost proportional to the element count: trees alone stop at the largest
    # training cost, boosting from the roofline follows the size.
    sizes = [2**i for i in range(2, 11)]
    texts = [elementwise(n) for n in sizes]
    y = 10.0 * np.asarray(sizes)
    big = [elementwise(2**14)]
    plain = CostModel(prior=None, random_state=0).fit(texts, y)
    boosted = CostModel(random_state=0).fit(texts, y)
    assert isinstance(boosted.estimators_[0].regressor_, PriorRegressor)
    assert plain.predict(big)[0] <= y.max() * 1.01
    assert boosted.predict(big)[0] > 5 * y.max()


def test_prior_regressor_is_a_plain_sklearn_regressor():
    from sklearn.tree import DecisionTreeRegressor

    X = np.arange(20.0).reshape(10, 2)
    y = 3 * X[:, 0] + 1
    model = PriorRegressor(DecisionTreeRegressor(max_depth=1), columns=[0])
    fitted = clone(model).fit(X.tolist(), y)
    assert fitted.predict([[40.0, 41.0]])[0] == pytest.approx(121.0)
    assert fitted.predict_prior(X) == pytest.approx(y)
    terms, base = fitted.prior_contributions(X[:2])
    assert terms[:, 1].tolist() == [0.0, 0.0]
    assert terms[:, 0] + base == pytest.approx(y[:2])
    # SHAP of a linear term: coefficient x distance from the training mean
    assert base == pytest.approx(y.mean())
    assert terms[:, 0] == pytest.approx(3 * (X[:2, 0] - X[:, 0].mean()))
    sparse_fit = clone(model).fit(sparse.csr_matrix(X), y)
    assert sparse_fit.predict(sparse.csr_matrix(X)) == pytest.approx(fitted.predict(X))


def test_prior_auto_needs_the_roofline_columns():
    x = np.arange(12.0)[:, None]
    model = CostModel(featurizer=IDENTITY, estimator=Ridge()).fit(x, x[:, 0])
    assert not isinstance(model.estimators_[0], PriorRegressor)  # auto: no columns
    extensive = CostModel(featurizer=IDENTITY, estimator=Ridge(), prior="extensive")
    assert not isinstance(extensive.fit(x, x[:, 0]).estimators_[0], PriorRegressor)
    without_logs = MLIRFeaturizer(shapes=ShapeFeatures(log_scale=False))
    with pytest.raises(ValueError, match="prior='roofline' needs"):
        CostModel(featurizer=without_logs, prior="roofline").fit(TEXTS, TEXTS_Y)
    names = CostModel(prior="roofline", random_state=0).fit(TEXTS, TEXTS_Y)
    prior = names.estimators_[0]  # TEXTS_Y is not skewed: no log wrapper
    assert isinstance(prior, PriorRegressor)
    columns = list(names.featurizer_.get_feature_names_out())
    assert [columns[c] for c in prior.columns] == [
        "shapes__log1p FLOPs total",
        "shapes__log1p bytes moved total",
    ]


def test_prior_extensive_skips_the_targets_one_dispatch_sets(tmp_path):
    # Registers are a dispatch's maximum: no power law of the program's FLOPs;
    # instructions add up over a program: boosted from the roofline.
    sizes = [2**i for i in range(2, 11)]
    texts = [elementwise(n) for n in sizes]
    y = np.c_[10.0 * np.asarray(sizes), np.full(len(sizes), 32.0)]
    y[::2, 1] = 40.0
    names = ["cpu_x86_64_v3.instructions", "nvidia_sm80.registers"]
    model = CostModel(prior="extensive", random_state=0).fit(texts, y, names)
    instructions, registers = (unwrap(e) for e in model.estimators_)
    assert instructions.prior is not None and registers.prior is None
    big = model.predict([elementwise(2**14)])[0]
    assert big[0] > 5 * y[:, 0].max()  # extrapolates with size
    assert 32.0 <= big[1] <= 40.0  # stays within what registers were
    everywhere = CostModel(random_state=0).fit(texts, y, names)
    assert all(unwrap(e).prior is not None for e in everywhere.estimators_)
    # a target the table does not know keeps the prior
    other = CostModel(prior="extensive", random_state=0).fit(texts, y, ["a", "b"])
    assert all(unwrap(e).prior is not None for e in other.estimators_)
    model.save(tmp_path / "m")
    loaded = CostModel.load(tmp_path / "m")
    assert loaded.prior == "extensive"
    np.testing.assert_allclose(loaded.predict(texts), model.predict(texts))


def test_prior_is_the_roofline_fit_of_the_target():
    # The prior of a log target is RooflineBaseline's least-squares fit.
    y = made_up_targets()[:, 0]
    model = CostModel(random_state=0).fit(TEXTS, y)
    roofline = RooflineBaseline().fit(TEXTS, y)
    prior = model.estimators_[0].regressor_.prior_
    np.testing.assert_allclose(
        np.r_[prior.intercept_, prior.coef_], roofline.coef_[0], rtol=1e-6, atol=1e-8
    )


# -- default estimator ---------------------------------------------------------
def test_default_estimator_grows_with_the_rows_of_each_target(monkeypatch):
    # Deeper boosters for targets with many measured rows (kernels),
    # the shallow ones below DEEP_ROWS (modules); rows without the target
    # (NaN) do not count.
    monkeypatch.setattr(_cost_model, "DEEP_ROWS", 40)
    x = np.arange(60.0)[:, None]
    y = np.column_stack([x[:, 0], np.where(x[:, 0] < 39, x[:, 0], np.nan)])
    model = CostModel(featurizer=IDENTITY, log_target=False, random_state=0)
    model.fit(x, y)
    boosters = [unwrap(e).regressor for e in model.estimators_]
    shapes = [(b.max_depth, b.n_estimators, b.max_bin) for b in boosters]
    assert shapes == [(8, 300, 256), (4, 300, _cost_model.SHALLOW_MAX_BIN)]
    assert [b.learning_rate for b in boosters] == [0.1, 0.05]
    assert _cost_model.default_estimator().max_depth == 4  # rows unknown: shallow
    given = CostModel(featurizer=IDENTITY, estimator=XGBRegressor(max_depth=2))
    assert unwrap(given.fit(x, y).estimators_[0]).regressor.max_depth == 2


def test_n_jobs_featurizes_the_training_documents_in_workers(monkeypatch):
    # 24 documents in tasks of 8: the featurizer's fit_transform goes to
    # joblib workers with the model's n_jobs, then gets back its own n_jobs
    from mlircost_classic.featurize import _base as featurize_base

    monkeypatch.setattr(featurize_base, "PARALLEL_CHUNK", 8)
    seen = []
    summarize = _union._summarize
    monkeypatch.setattr(
        _union, "_summarize", lambda *a: seen.append(len(a[0])) or summarize(*a)
    )
    y = made_up_targets()
    parallel = CostModel(n_jobs=2, random_state=0).fit(TEXTS, y)
    assert seen == []  # every task summarized in a worker (its copy of the spy)
    serial = CostModel(random_state=0).fit(TEXTS, y)
    assert seen == [24]  # one process: one chunk, read here
    assert parallel.featurizer_.get_params()["n_jobs"] is None
    np.testing.assert_array_equal(
        parallel.featurizer_.transform(TEXTS).toarray(),
        serial.featurizer_.transform(TEXTS).toarray(),
    )
    np.testing.assert_array_equal(parallel.predict(TEXTS), serial.predict(TEXTS))
    given = MLIRFeaturizer(n_jobs=1)
    fitted = CostModel(featurizer=given, n_jobs=2, random_state=0).fit(TEXTS, y)
    assert fitted.featurizer_.get_params()["n_jobs"] == 1


def test_version_1_files_without_priors_still_load(tmp_path):
    model = CostModel(prior=None, random_state=0).fit(TEXTS, made_up_targets())
    model.save(tmp_path / "m")
    path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 1
    del manifest["params"]["prior"]
    for entry in manifest["estimators"]:
        del entry["prior"]
    path.write_text(json.dumps(manifest))
    loaded = CostModel.load(tmp_path / "m")
    assert loaded.prior is None
    np.testing.assert_array_equal(loaded.predict(TEXTS), model.predict(TEXTS))


# -- saving and loading -------------------------------------------------------
@pytest.mark.parametrize("name", ["model", "model.zip"])
def test_save_load_round_trip_gives_identical_predictions(tmp_path, name):
    Y = made_up_targets()
    Y[:3, 0] = np.nan
    model = CostModel(intervals="conformal", random_state=0).fit(
        TEXTS, Y, target_names=["a", "b"]
    )
    model.save(tmp_path / name)
    loaded = CostModel.load(tmp_path / name)
    probe = [*TEXTS, UNSEEN]
    np.testing.assert_array_equal(loaded.predict(probe), model.predict(probe))
    for got, want in zip(
        loaded.predict_interval(probe), model.predict_interval(probe), strict=True
    ):
        np.testing.assert_array_equal(got, want)
    assert loaded.target_names_ == ["a", "b"]
    assert loaded.log_targets_ == model.log_targets_
    assert loaded.get_params()["intervals"] == "conformal"


def test_folder_holds_only_json_and_xgboost_files(tmp_path):
    CostModel(random_state=0).fit(TEXTS, made_up_targets()).save(tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["manifest.json", "target000.ubj", "target001.ubj"]
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["target_names"] == ["target0", "target1"]


@pytest.mark.parametrize(
    ("estimator", "param", "value"),
    [
        (Ridge(alpha=2.0), "alpha", 2.0),
        (RidgeCV(alphas=np.logspace(-1, 1, 3)), "alphas", [0.1, 1.0, 10.0]),
    ],
)
def test_linear_model_round_trip(tmp_path, estimator, param, value):
    model = CostModel(estimator=estimator).fit(TEXTS, made_up_targets())
    model.save(tmp_path / "linear")
    loaded = CostModel.load(tmp_path / "linear")
    np.testing.assert_array_equal(loaded.predict(TEXTS), model.predict(TEXTS))
    np.testing.assert_allclose(loaded.get_params()[f"estimator__{param}"], value)


def test_featurizer_state_round_trip():
    featurizer = MLIRFeaturizer(
        opcodes=OpcodeCounter(log_scale=True, normalize="l2"),
        ngrams=OpNgramTfidf(ngram_range=(1, 3), type_classes=True, sublinear_tf=True),
        shapes=ShapeFeatures(log_scale=False),
        on_error="ignore",
    ).fit(TEXTS)
    data = json.loads(json.dumps(featurizer_to_dict(featurizer)))
    restored = featurizer_from_dict(data)
    probe = [*TEXTS, UNSEEN, "not mlir {"]
    got, want = restored.transform(probe), featurizer.transform(probe)
    np.testing.assert_array_equal(got.toarray(), want.toarray())
    assert list(restored.get_feature_names_out()) == list(
        featurizer.get_feature_names_out()
    )
    assert restored.get_params(deep=False)["on_error"] == "ignore"
    assert restored.get_params()["ngrams__ngram_range"] == (1, 3)


def test_unsavable_parts_are_refused(tmp_path):
    Y = made_up_targets()
    hgb = CostModel(estimator=HistGradientBoostingRegressor(max_iter=3)).fit(TEXTS, Y)
    with pytest.raises(TypeError, match="HistGradientBoostingRegressor"):
        hgb.save(tmp_path / "hgb")
    numeric = CostModel(featurizer=IDENTITY, estimator=Ridge()).fit(
        np.arange(10.0)[:, None], np.arange(10.0)
    )
    with pytest.raises(TypeError, match="FunctionTransformer"):
        numeric.save(tmp_path / "numeric")


def test_incompatible_format_version_is_refused(tmp_path):
    CostModel(random_state=0).fit(TEXTS, made_up_targets()).save(tmp_path / "m")
    path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 99
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="format version 99"):
        CostModel.load(tmp_path / "m")


@pytest.mark.parametrize("change", ["width", "names"])
def test_model_from_a_different_feature_set_is_refused(tmp_path, change):
    # A release that adds or renames feature columns cannot feed an older model's
    # trees: loading says so instead of predicting from shifted columns.
    CostModel(random_state=0).fit(TEXTS, made_up_targets()).save(tmp_path / "m")
    path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(path.read_text())
    assert len(manifest["feature_names_sha256"]) == 64
    if change == "width":
        manifest["n_features"] += 1
        del manifest["feature_names_sha256"]  # as in files written before it
    else:
        manifest["feature_names_sha256"] = "0" * 64
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="does not reproduce.*Fit the model again"):
        CostModel.load(tmp_path / "m")


def test_not_a_model_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no manifest.json"):
        CostModel.load(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.json").write_text('{"format": "something"}')
    with pytest.raises(ValueError, match="not hold a saved"):
        CostModel.load(tmp_path / "other")
    with pytest.raises(FileNotFoundError):
        CostModel.load(tmp_path / "missing")


def test_manifest_naming_another_class_is_refused(tmp_path):
    CostModel(estimator=Ridge()).fit(TEXTS, made_up_targets()).save(tmp_path / "m")
    path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["estimators"][0]["cls"] = "os.system"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="unknown linear model"):
        CostModel.load(tmp_path / "m")


def test_existing_model_is_not_overwritten_by_default(tmp_path):
    model = CostModel(estimator=Ridge()).fit(TEXTS, made_up_targets())
    model.save(tmp_path / "m.zip")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m.zip")
    model.save(tmp_path / "m.zip", overwrite=True)
    assert CostModel.load(tmp_path / "m.zip").predict(TEXTS[:1]).shape == (1, 2)


# -- roofline -----------------------------------------------------------------
def synthetic_cost_features(n: int = 50) -> np.ndarray:
    """FLOP and byte columns drawn at random (features, not dataset records)."""
    rng = np.random.default_rng(3)
    return np.column_stack([10 ** rng.uniform(4, 9, n), 10 ** rng.uniform(4, 8, n)])


def test_roofline_recovers_an_exact_power_law():
    F = synthetic_cost_features()
    y = 2.5 * F[:, 0] ** 0.7 * F[:, 1] ** 0.3
    names = FunctionTransformer(
        feature_names_out=lambda transformer, names: [
            "FLOPs total",
            "bytes moved total",
        ]
    )
    roofline = RooflineBaseline(featurizer=names).fit(F, y)
    a, b, c = roofline.coef_[0]
    np.testing.assert_allclose([np.exp(a), b, c], [2.5, 0.7, 0.3], rtol=1e-3)
    np.testing.assert_allclose(roofline.predict(F), y, rtol=1e-3)


def test_roofline_on_mlir_texts_handles_nan_and_signed_targets():
    Y = made_up_targets()
    Y[:4, 0] = np.nan
    roofline = RooflineBaseline().fit(TEXTS, Y, target_names=["a", "b"])
    assert roofline.log_targets_ == [True, False]
    assert roofline.coef_.shape == (2, 3) and np.isfinite(roofline.coef_).all()
    pred = roofline.predict([*TEXTS[:3], UNSEEN])
    assert pred.shape == (4, 2) and np.isfinite(pred).all()


def test_roofline_needs_its_columns():
    with pytest.raises(ValueError, match="no column 'flops'"):
        RooflineBaseline(flops_feature="flops").fit(TEXTS, made_up_targets())


def test_roofline_is_cloneable():
    roofline = RooflineBaseline(bytes_feature="bytes moved total")
    assert clone(roofline).get_params() == roofline.get_params()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clone(roofline).fit(TEXTS, made_up_targets()[:, 0])


def test_custom_featurizer_parameter_survives_saving(tmp_path):
    featurizer = MLIRFeaturizer(ngrams="drop", opcodes=OpcodeCounter(min_count=2))
    model = CostModel(featurizer=featurizer, estimator=Ridge()).fit(
        TEXTS, made_up_targets()
    )
    model.save(tmp_path / "m")
    loaded = CostModel.load(tmp_path / "m")
    assert loaded.get_params()["featurizer__ngrams"] == "drop"
    assert loaded.get_params()["featurizer__opcodes__min_count"] == 2
    assert not hasattr(loaded.featurizer, "transformers_")
    np.testing.assert_array_equal(loaded.predict(TEXTS), model.predict(TEXTS))


def test_predictions_and_intervals_stay_in_the_targets_domain():
    # Linear fits extrapolate beyond the table's bounds: occupancy above 1, an
    # instruction count below 0. The library clips, not only the command line.
    x = np.linspace(0.0, 1.0, 200)[:, None]
    Y = np.column_stack([0.2 + 0.7 * x[:, 0], 100 - 90 * x[:, 0], 5 - 4 * x[:, 0]])
    names = ["nvidia_sm80.occupancy", "cpu_x86_64_v3.instructions", "made_up.signed"]
    model = CostModel(
        featurizer=IDENTITY,
        estimator=Ridge(alpha=1e-6),
        log_target=False,
        prior=None,
        intervals="conformal",
        random_state=0,
    ).fit(x, Y, names)
    far = np.array([[2.0]])
    raw = [est.predict(far)[0] for est in model.estimators_]
    assert raw[0] > 1.0 and raw[1] < 0.0 and raw[2] < 0.0
    point, lower, upper = model.predict_interval(far, return_prediction=True)
    np.testing.assert_array_equal(model.predict(far), point)
    assert point[0, 0] == upper[0, 0] == 1.0
    assert point[0, 1] == lower[0, 1] == upper[0, 1] == 0.0
    # A target outside the table has no known domain: left as predicted.
    assert point[0, 2] == pytest.approx(raw[2]) and lower[0, 2] < point[0, 2]
    inside = np.array([[0.5]])
    np.testing.assert_allclose(
        model.predict(inside)[0], [est.predict(inside)[0] for est in model.estimators_]
    )


def test_score_skips_missing_targets():
    Y = made_up_targets()
    Y[::3, 0] = np.nan
    model = CostModel(estimator=Ridge(), prior=None).fit(TEXTS, Y)
    score = model.score(TEXTS, Y)
    assert np.isfinite(score)
    P = model.predict(TEXTS)
    rows = ~np.isnan(Y[:, 0])
    from sklearn.metrics import r2_score

    expected = np.mean([r2_score(Y[rows, 0], P[rows, 0]), r2_score(Y[:, 1], P[:, 1])])
    assert score == pytest.approx(expected)
    # A target without two measured rows is left out; none left gives NaN.
    Y[:, 1] = np.nan
    only_first = r2_score(Y[rows, 0], P[rows, 0])
    assert model.score(TEXTS, Y) == pytest.approx(only_first)
    Y[:, 0] = np.nan
    assert np.isnan(model.score(TEXTS, Y))
