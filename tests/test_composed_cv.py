"""The composed model calibrated on held-out groups: cross_val_compose and fit(raw=, groups=).

Small hand-written modules (a matmul + relu family and a relu-chain family) and
a ridge kernels model fitted here; the labels are made up for the API tests.
"""

import math

import numpy as np
import pytest
from linalg_modules import matmul, module, relu
from sklearn.linear_model import Ridge
from sklearn.utils import Bunch
from xgboost import XGBRegressor

from mlircost_classic.featurize import partition_dispatches
from mlircost_classic.models import (
    ComposedCostModel,
    CostModel,
    _composed,
    compose_regions,
    cross_val_compose,
)

SIZES = (4, 8, 16, 32, 64, 128)
TEXTS = [
    module(matmul("%arg0", "%w", n, "%m") + relu("%m", n, "%out"), n) for n in SIZES
] + [module(relu("%arg0", n, "%a") + relu("%a", n, "%out"), n) for n in SIZES]
GROUPS = np.array(["mm"] * len(SIZES) + ["relu"] * len(SIZES), dtype=object)
KERNEL_NAMES = ["cpu_x86_64_v3.instructions", "nvidia_sm80.registers"]
NAMES = [*KERNEL_NAMES, "cpu_x86_64_v3.dispatches"]


def _kernels() -> Bunch:
    """Each module's regions as kernel records of its group (made-up labels)."""
    data, groups = [], []
    for text, group in zip(TEXTS, GROUPS, strict=True):
        for region in partition_dispatches(text):
            data.append(region.text)
            groups.append(group)
    target = np.array([[50.0 * len(t), 8.0 + len(t) % 97] for t in data])
    return Bunch(
        data=data,
        target=target,
        target_names=KERNEL_NAMES,
        groups=np.array(groups, dtype=object),
    )


def _ridge() -> CostModel:
    return CostModel(estimator=Ridge(), prior=None)


def test_each_group_is_composed_by_a_model_that_never_saw_its_kernels():
    kernels = _kernels()
    raw, folds = cross_val_compose(
        TEXTS, GROUPS, kernels, NAMES, kernel_model=_ridge(), n_splits=2
    )
    assert raw.shape == (len(TEXTS), len(NAMES))
    assert set(folds) == {0, 1}
    assert len({folds[i] for i in np.flatnonzero(GROUPS == "mm")}) == 1
    for group in ("mm", "relu"):
        other = kernels.groups != group
        alone = _ridge().fit(
            [t for t, keep in zip(kernels.data, other, strict=True) if keep],
            kernels.target[other],
            target_names=KERNEL_NAMES,
        )
        rows = np.flatnonzero(GROUPS == group)
        regions = [partition_dispatches(TEXTS[i]) for i in rows]
        expected = compose_regions(alone, regions, NAMES)[0]
        assert np.allclose(raw[rows], expected, equal_nan=True)
    # A model fitted on every kernel composes the modules differently.
    everything = _ridge().fit(kernels.data, kernels.target, target_names=KERNEL_NAMES)
    regions = [partition_dispatches(t) for t in TEXTS]
    assert not np.allclose(
        raw[:, 1], compose_regions(everything, regions, NAMES)[0][:, 1]
    )
    with pytest.raises(ValueError, match="groups"):
        cross_val_compose(TEXTS, GROUPS[:3], kernels, NAMES, kernel_model=_ridge())


def test_fold_models_are_kept_and_reused_for_the_same_training_kernels(
    tmp_path, monkeypatch
):
    kernels = _kernels()
    kernels.ids = np.array([f"k{i}" for i in range(len(kernels.data))])
    kept = tmp_path / "folds"
    args = (TEXTS, GROUPS, kernels, NAMES)
    raw, folds = cross_val_compose(
        *args, kernel_model=_ridge(), n_splits=2, models_dir=kept
    )
    assert len(list(kept.iterdir())) == 2
    # Loaded, not fitted again: the same aggregates.
    monkeypatch.setattr(CostModel, "fit", lambda *a, **k: pytest.fail("refitted"))
    again, _ = cross_val_compose(
        *args, kernel_model=_ridge(), n_splits=2, models_dir=kept
    )
    assert np.allclose(again, raw, equal_nan=True)
    monkeypatch.undo()
    # Other training kernels (one fewer in the "relu" group's fold): a new fit.
    fewer = Bunch(**{k: v for k, v in kernels.items()})
    fewer.groups = kernels.groups.copy()
    fewer.groups[np.flatnonzero(kernels.groups == "mm")[0]] = "other"
    cross_val_compose(
        TEXTS, GROUPS, fewer, NAMES, kernel_model=_ridge(), n_splits=2, models_dir=kept
    )
    assert len(list(kept.iterdir())) == 3
    with pytest.raises(TypeError, match="CostModel"):
        cross_val_compose(*args, kernel_model=Ridge(), models_dir=kept)


def test_kept_fits_are_keyed_by_the_boosters_the_default_estimator_stands_for(
    monkeypatch,
):
    # estimator=None stands for default_estimator's boosters: another default
    # booster is another key (a kept fold model of the old one is not read),
    # while a given estimator is keyed by its own parameters alone.
    default, given = CostModel(), _ridge()
    before = (
        _composed.fit_settings(default, 10_000),
        _composed.fit_settings(given, 10_000),
    )
    assert any(name.startswith("default_estimator(") for name, _ in before[0])
    monkeypatch.setattr(
        _composed, "default_estimator", lambda n=None: XGBRegressor(max_depth=3)
    )
    assert _composed.fit_settings(default, 10_000) != before[0]
    assert _composed.fit_settings(given, 10_000) == before[1]


def test_fit_on_held_out_aggregates_calibrates_intervals_on_held_out_groups(tmp_path):
    kernels = _kernels()
    fitted = _ridge().fit(kernels.data, kernels.target, target_names=KERNEL_NAMES)
    rng = np.random.default_rng(0)
    raw = np.column_stack(
        [
            rng.uniform(1e3, 1e5, len(TEXTS)),
            rng.uniform(10, 100, len(TEXTS)),
            np.full(len(TEXTS), 2.0),
        ]
    )
    Y = np.column_stack(
        [raw[:, 0] * rng.uniform(0.5, 2, len(TEXTS)), 5 + 0.8 * raw[:, 1], raw[:, 2]]
    )
    Y[:, 1] += np.where(GROUPS == "mm", 3.0, -3.0)
    model = ComposedCostModel(
        kernel_model=fitted, intervals="conformal", calibration_folds=2
    )
    model.fit(TEXTS, Y, NAMES, groups=GROUPS, raw=raw)
    assert model.calibration_ == "group"
    # The point line is fitted on every module's held-out aggregate ...
    slope, intercept = np.polyfit(raw[:, 1], Y[:, 1], 1)
    assert model.coef_[1] == pytest.approx([intercept, slope])
    assert model.coef_[2].tolist() == [0.0, 1.0]  # counts are not calibrated
    # ... and each module's score is its residual under the other group's line.
    residual = np.empty(len(TEXTS))
    for group in ("mm", "relu"):
        train, test = GROUPS != group, GROUPS == group
        b, a = np.polyfit(raw[train, 1], Y[train, 1], 1)
        residual[test] = np.abs(Y[test, 1] - (a + b * raw[test, 1]))
    scores = np.sort(residual)
    expected = scores[math.ceil((len(scores) + 1) * 0.9) - 1]
    assert model.conformal_quantiles_[1] == pytest.approx(expected)
    # Calibrated on one random split instead, the half-width differs.
    split = ComposedCostModel(
        kernel_model=fitted, intervals="conformal", random_state=0
    )
    split.fit(TEXTS, Y, NAMES, raw=raw)
    assert split.calibration_ == "random"
    assert split.conformal_quantiles_[1] != pytest.approx(expected)

    # With strata, each stratum's quantile of the same scores, the largest
    # finite one kept: two modules are too few for a 90% quantile of their own
    # (inf), so stratum "b" is left out rather than making the interval unbounded.
    strata = np.full(len(TEXTS), "a", dtype=object)
    strata[np.argsort(residual)[-2:]] = "b"
    by_source = ComposedCostModel(
        kernel_model=fitted, intervals="conformal", calibration_folds=2
    )
    by_source.fit(TEXTS, Y, NAMES, groups=GROUPS, raw=raw, strata=strata)
    assert by_source.calibration_ == "group, largest of the strata"
    kept = np.sort(residual[strata == "a"])
    assert by_source.conformal_quantiles_[1] == pytest.approx(
        kept[math.ceil((len(kept) + 1) * 0.9) - 1]
    )

    model.save(tmp_path / "m")
    loaded = ComposedCostModel.load(tmp_path / "m", kernel_model=fitted)
    assert loaded.calibration_ == "group"
    assert loaded.conformal_quantiles_ == pytest.approx(model.conformal_quantiles_)
    assert np.allclose(
        loaded.predict_interval(TEXTS)[1], model.predict_interval(TEXTS)[1]
    )


def test_fit_checks_the_shapes_of_raw_and_groups():
    kernels = _kernels()
    fitted = _ridge().fit(kernels.data, kernels.target, target_names=KERNEL_NAMES)
    model = ComposedCostModel(kernel_model=fitted, intervals="conformal")
    Y = np.ones((len(TEXTS), len(NAMES)))
    with pytest.raises(ValueError, match="raw has shape"):
        model.fit(TEXTS, Y, NAMES, raw=np.ones((len(TEXTS), 2)))
    with pytest.raises(ValueError, match="groups"):
        model.fit(TEXTS, Y, NAMES, groups=GROUPS[:4])
