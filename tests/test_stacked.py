"""StackedFeaturizer: a module's text features beside its composed aggregates."""

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone

import mlircost_classic as mc
from mlircost_classic.featurize import MLIRFeaturizer, partition_dispatches
from mlircost_classic.models import (
    CostModel,
    StackedFeaturizer,
    compose_regions,
    featurizer_from_dict,
    featurizer_to_dict,
)
from mlircost_classic.models._stacked import COMPOSED_PREFIX, composed_columns

NAMES = ["nvidia_sm80.registers", "cpu_x86_64_v3.code_bytes"]


@pytest.fixture(scope="module")
def modules():
    ds = mc.load_dataset("modules", level="linalg", targets=NAMES)
    order = np.argsort([len(t) for t in ds.data], kind="stable")
    rows = order[: len(order) // 2][::40][:24]  # small modules, several families
    return [ds.data[i] for i in rows], ds.target[rows]


@pytest.fixture(scope="module")
def fitted(modules):
    texts, _ = modules
    return StackedFeaturizer().fit(texts)


def test_columns_are_the_text_features_then_the_composed_aggregates(modules, fitted):
    texts, _ = modules
    F = fitted.transform(texts)
    text = MLIRFeaturizer().fit(texts).transform(texts)
    width = text.shape[1]
    assert sparse.issparse(F)
    assert F.shape == (len(texts), width + len(fitted.composed_names_))
    assert (F[:, :width] != text).nnz == 0
    kernels = mc.load_pretrained("kernels")
    assert fitted.composed_names_ == composed_columns(kernels.target_names_)
    regions = [partition_dispatches(t) for t in texts]
    raw = compose_regions(kernels, regions, fitted.composed_names_)[0]
    expected = np.nan_to_num(np.log1p(np.maximum(raw, 0.0)), nan=0.0)
    assert np.allclose(F[:, width:].toarray(), expected, rtol=0, atol=1e-12)
    # the dispatch count is its own column: log1p(number of regions)
    assert np.allclose(np.expm1(F[:, -1].toarray().ravel()), [len(r) for r in regions])
    names = fitted.get_feature_names_out()
    assert list(names[width:]) == [COMPOSED_PREFIX + t for t in fitted.composed_names_]
    assert "shapes__log1p FLOPs total" in list(names[:width])


def test_fit_transform_equals_fit_then_transform_and_dense_rows(modules, fitted):
    texts, _ = modules
    A = clone(StackedFeaturizer()).fit_transform(texts)
    B = fitted.transform(texts)
    assert (A != B).nnz == 0
    assert np.array_equal(
        fitted._dense_rows(texts[:3]), fitted.transform(texts[:3]).toarray()
    )


def test_cost_model_with_it_keeps_the_roofline_prior_and_saves(modules, tmp_path):
    texts, y = modules
    model = CostModel(featurizer=StackedFeaturizer(), random_state=0).fit(
        texts, y, NAMES
    )
    assert model._prior_columns() is not None
    few = model.predict(texts[:2])  # the dense-rows path
    F = model.featurizer_.transform(texts[:2])
    assert np.allclose(few, super(CostModel, model).predict(texts[:2]), rtol=1e-5)
    assert F.shape[1] == model.n_features_
    model.save(tmp_path / "stacked")
    loaded = CostModel.load(tmp_path / "stacked")
    assert isinstance(loaded.featurizer_, StackedFeaturizer)
    assert np.array_equal(loaded.predict(texts), model.predict(texts))
    assert loaded.novelty(texts[:1]) == model.novelty(texts[:1])


def test_featurizer_round_trips_through_plain_data(fitted, modules):
    texts, _ = modules
    data = featurizer_to_dict(fitted)
    again = featurizer_from_dict(data)
    assert (again.transform(texts) != fitted.transform(texts)).nnz == 0


def test_only_the_shipped_kernels_model_is_saved_by_name(modules):
    texts, _ = modules
    kernels = mc.load_pretrained("kernels")
    # a clone (as CostModel makes at fit) shares the fitted kernels model
    given = clone(StackedFeaturizer(kernel_model=kernels))
    assert given.kernel_model is kernels
    given.fit(texts[:2])
    assert given.kernel_model_ is kernels
    with pytest.raises(TypeError, match="kernel_model='pretrained'"):
        featurizer_to_dict(given)


def test_reads_texts_only(fitted, modules):
    texts, _ = modules
    with pytest.raises(TypeError, match="MLIR texts"):
        fitted.transform([mc.parse(texts[0])])


def test_auto_composes_each_module_once_with_the_same_numbers(modules, monkeypatch):
    from mlircost_classic.models import _composed

    texts, _ = modules
    model = mc.load_pretrained("auto", "linalg")
    assert {"composed", "stacked"} <= set(model.chosen_)
    alone = {
        name: model.models_[name].predict(texts[:3]) for name in set(model.chosen_)
    }
    calls = []
    real = _composed._predict_regions

    def counted(kernel_model, regions):
        calls.append(len(regions))
        return real(kernel_model, regions)

    monkeypatch.setattr(_composed, "_predict_regions", counted)
    together = model.predict(texts[:3])
    assert calls == [3]  # the composed and the stacked answers: one composition
    for name, pred in alone.items():
        mine, theirs = model._columns(name)
        assert np.array_equal(together[:, mine], pred[:, theirs])
    model.predict(texts[:3])
    assert calls == [3, 3]  # nothing kept between calls
