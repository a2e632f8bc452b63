"""Intervals calibrated on held-out groups, and the novelty flags of a cost model.

The labels of the group-shift problem are synthetic on purpose: the test is of
the calibration method on a problem whose shift between groups is known, not
of the dataset.
"""

import json

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import DecisionTreeRegressor

from mlircost_classic.models import (
    NOVELTY_FEATURES,
    CostModel,
    interval_coverage,
    load_pretrained,
)

N_GROUPS = 20
PER_GROUP = 12


def group_shift_problem():
    """Each group its own size range and its own cost per unit of size.

    A tree learns each training group's rate and fits its rows closely, so
    residuals on a random split of them are small; a new group has a rate it
    never saw, and only residuals on held-out groups show that.
    """
    rng = np.random.default_rng(0)
    rates = np.exp(rng.uniform(-1.0, 1.0, N_GROUPS))
    groups = np.repeat(np.arange(N_GROUPS), PER_GROUP)
    size = 100.0 * groups + rng.uniform(0, 100, groups.size)
    noise = np.exp(rng.normal(0, 0.02, groups.size))
    y = size * rates[groups] * noise
    return size[:, None], y, groups


def model() -> CostModel:
    return CostModel(
        featurizer=FunctionTransformer(),
        estimator=DecisionTreeRegressor(min_samples_leaf=3, random_state=0),
        intervals="conformal",
        random_state=0,
    )


def held_out_coverage(with_groups: bool) -> float:
    X, y, groups = group_shift_problem()
    lower, upper = np.full(y.shape, np.nan), np.full(y.shape, np.nan)
    for train, test in GroupKFold(n_splits=5).split(X, y, groups):
        fit_groups = groups[train] if with_groups else None
        fitted = model().fit(X[train], y[train], groups=fit_groups)
        assert fitted.calibration_ == ("group" if with_groups else "random")
        lower[test], upper[test] = fitted.predict_interval(X[test])
    return interval_coverage(y, lower, upper)


def test_group_calibration_covers_new_groups():
    random_split = held_out_coverage(with_groups=False)
    by_group = held_out_coverage(with_groups=True)
    assert by_group >= 0.85
    assert by_group > random_split + 0.2


def test_group_calibration_uses_held_out_residuals_and_all_rows():
    X, y, groups = group_shift_problem()
    fitted = model().fit(X, y, groups=groups)
    # The point model is fitted on every row (no calibration share held out).
    without_intervals = model().set_params(intervals=None).fit(X, y)
    np.testing.assert_array_equal(fitted.predict(X), without_intervals.predict(X))
    random_split = model().fit(X, y)
    assert fitted.conformal_quantiles_[0] > 2 * random_split.conformal_quantiles_[0]


def test_one_group_gives_unbounded_intervals_and_bad_groups_are_refused():
    X, y, _ = group_shift_problem()
    fitted = model().fit(X, y, groups=np.zeros(len(y)))
    assert fitted.conformal_quantiles_ == [np.inf]
    with pytest.raises(ValueError, match="one value per document"):
        model().fit(X, y, groups=np.zeros(len(y) - 1))
    with pytest.raises(ValueError, match="calibration_folds"):
        CostModel(calibration_folds=1).fit(X, y)


# -- novelty ------------------------------------------------------------------
def elementwise(n: int, op: str = "arith.addf") -> str:
    return f"""func.func @f(%a: tensor<{n}xf32>) -> tensor<{n}xf32> {{
  %0 = {op} %a, %a : tensor<{n}xf32>
  return %0 : tensor<{n}xf32>
}}"""


UNKNOWN_OP = """func.func @f(%a: tensor<16xf32>) -> tensor<16xf32> {
  %0 = "test.unknown"(%a) : (tensor<16xf32>) -> tensor<16xf32>
  return %0 : tensor<16xf32>
}"""

TEXTS = [
    elementwise(2**i, op) for i in range(2, 8) for op in ("arith.addf", "arith.mulf")
]
Y = np.array([[2.0**i, 3.0 * 2**i] for i in range(2, 8) for _ in range(2)])


@pytest.fixture(scope="module")
def fitted():
    return CostModel(estimator=Ridge(), intervals="conformal").fit(
        TEXTS, Y, groups=[t.count("addf") for t in TEXTS]
    )


def test_novelty_flags_unseen_ops_and_out_of_range_shapes(fitted):
    assert set(fitted.training_ranges_) == set(NOVELTY_FEATURES)
    low, high = fitted.training_ranges_["largest tensor elements"]
    assert (low, high) == (4.0, 128.0)
    inside, unseen, large, small = fitted.novelty(
        [elementwise(32), UNKNOWN_OP, elementwise(4096), elementwise(2, "arith.mulf")]
    )
    assert inside == []
    # Ops come first; the catalog gives the unknown op no FLOPs, which is
    # below the training range too.
    assert unseen[0] == "ops never seen in training: test.unknown"
    assert any(
        r.startswith("largest tensor elements = 4096 above the training range [4, 128]")
        for r in large
    )
    assert any(r.startswith("FLOPs total") and "above" in r for r in large)
    assert not any("never seen" in r for r in large)
    assert any("below the training range" in r for r in small)


def test_novelty_of_an_unreadable_document(fitted):
    (reasons,) = fitted.novelty(["func.func @f( {{ oops"])
    assert len(reasons) == 1 and reasons[0].startswith("could not be read")
    with pytest.raises(ValueError, match="string object received"):
        fitted.novelty(elementwise(4))


@pytest.mark.parametrize("name", ["m", "m.zip"])
def test_save_load_keeps_ranges_and_calibration(fitted, tmp_path, name):
    fitted.save(tmp_path / name)
    loaded = CostModel.load(tmp_path / name)
    assert loaded.training_ranges_ == fitted.training_ranges_
    assert loaded.calibration_ == "group"
    assert loaded.calibration_folds == fitted.calibration_folds
    probe = [elementwise(4096), UNKNOWN_OP, elementwise(8)]
    assert loaded.novelty(probe) == fitted.novelty(probe)


def test_version_2_files_load_and_check_ops_only(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 2
    for key in ("training_ranges", "calibration"):
        del manifest[key]
    del manifest["params"]["calibration_folds"]
    path.write_text(json.dumps(manifest))
    loaded = CostModel.load(tmp_path / "m")
    assert loaded.training_ranges_ == {} and loaded.calibration_ == "random"
    assert loaded.novelty([elementwise(4096)]) == [[]]
    assert loaded.novelty([UNKNOWN_OP]) == [
        ["ops never seen in training: test.unknown"]
    ]
    np.testing.assert_array_equal(loaded.predict(TEXTS), fitted.predict(TEXTS))


def test_shipped_models_still_load_and_flag_unseen_ops():
    shipped = load_pretrained("kernels", "dispatch")
    assert shipped.training_ranges_ == {} or "ops" in shipped.training_ranges_
    (reasons,) = shipped.novelty([UNKNOWN_OP])
    assert "ops never seen in training: test.unknown" in reasons


def test_calibrate_sets_half_widths_from_held_out_predictions():
    """A model fitted on some groups, calibrated on the predictions of others."""
    X, y, groups = group_shift_problem()
    train, test = groups < 10, groups >= 10
    fitted = model().fit(X[train], y[train])
    narrow = fitted.conformal_quantiles_[0]
    held_out = fitted.predict(X[test])
    fitted.calibrate(y=y[test], predictions=held_out, calibration="group")
    scale = np.log1p if fitted.log_targets_[0] else np.asarray
    scores = np.sort(np.abs(scale(y[test]) - scale(held_out)))
    k = int(np.ceil((test.sum() + 1) * 0.9))
    assert fitted.conformal_quantiles_ == [pytest.approx(scores[k - 1])]
    assert fitted.calibration_ == "group"
    assert fitted.conformal_quantiles_[0] > narrow  # new groups: wider
    lower, upper = fitted.predict_interval(X[test])
    assert interval_coverage(y[test], lower, upper) >= 0.9
    # from documents, the same as from their predictions
    again = model().fit(X[train], y[train]).calibrate(X[test], y[test])
    assert again.conformal_quantiles_ == fitted.conformal_quantiles_
    assert again.calibration_ == "data"
    with pytest.raises(ValueError, match="either X or predictions"):
        again.calibrate(X[test], y[test], predictions=held_out)


def test_stratified_quantile_is_the_largest_of_the_strata():
    from mlircost_classic.models._cost_model import (
        _conformal_quantile,
        _stratified_quantile,
    )

    rng = np.random.default_rng(1)
    easy, hard = rng.uniform(0, 1, 200), rng.uniform(0, 10, 40)
    scores = np.concatenate([easy, hard])
    strata = np.array(["easy"] * 200 + ["hard"] * 40, dtype=object)
    pooled = _conformal_quantile(scores, 0.9)
    by_stratum = _stratified_quantile(scores, strata, 0.9)
    assert by_stratum == _conformal_quantile(hard, 0.9)
    assert by_stratum > pooled  # the easy rows hide the hard ones when pooled
    assert _stratified_quantile(scores, None, 0.9) == pooled
    # a stratum too small for a finite 90% quantile is left out ...
    tiny = np.append(scores, 100.0)
    assert _stratified_quantile(tiny, np.append(strata, "tiny"), 0.9) == by_stratum
    # ... unless every stratum is
    assert _stratified_quantile(hard[:5], strata[-5:], 0.9) == np.inf
    with pytest.raises(ValueError, match="strata"):
        _stratified_quantile(scores, strata[:-1], 0.9)


def two_source_problem():
    """One cost law, a quarter of the groups (one source) far noisier than the rest."""
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(N_GROUPS), PER_GROUP)
    hard = groups % 4 == 0
    x = rng.uniform(0, 10, groups.size)
    noise = rng.normal(0, np.where(hard, 0.8, 0.05))
    y = 100 * np.exp(0.3 * x + noise)
    return x[:, None], y, groups, np.where(hard, "hard", "easy").astype(object)


def test_strata_widen_intervals_to_the_hardest_source():
    """Pooled, the easy source's residuals set the half-width: the hard one is under-covered."""
    X, y, groups, strata = two_source_problem()
    hard = strata == "hard"
    lower = {"pooled": np.empty(y.size), "strata": np.empty(y.size)}
    upper = {key: np.empty(y.size) for key in lower}
    for train, test in GroupKFold(n_splits=5).split(X, y, groups):
        fitted = {
            key: model()
            .set_params(log_target=True)
            .fit(
                X[train],
                y[train],
                groups=groups[train],
                strata=strata[train] if key == "strata" else None,
            )
            for key in lower
        }
        assert fitted["pooled"].calibration_ == "group"
        assert fitted["strata"].calibration_ == "group, largest of the strata"
        # the same fold models, scored by stratum: wider, the same points
        q = {key: model.conformal_quantiles_[0] for key, model in fitted.items()}
        assert q["strata"] > q["pooled"]
        np.testing.assert_array_equal(
            fitted["strata"].predict(X[test]), fitted["pooled"].predict(X[test])
        )
        for key, model_ in fitted.items():
            lower[key][test], upper[key][test] = model_.predict_interval(X[test])
    coverage = {
        key: interval_coverage(y[hard], lower[key][hard], upper[key][hard])
        for key in lower
    }
    assert coverage["pooled"] < 0.75
    assert coverage["strata"] >= 0.85
    # the easy source is over-covered instead: the price of not knowing the source
    assert (
        interval_coverage(y[~hard], lower["strata"][~hard], upper["strata"][~hard])
        > 0.97
    )


def test_calibrate_with_strata_keeps_the_largest_stratum_quantile():
    X, y, groups = group_shift_problem()
    strata = np.where(groups % 4 == 0, "hard", "easy").astype(object)
    y = np.where(strata == "hard", y * 2.0 ** np.sign(np.sin(X[:, 0])), y)
    train, test = groups < 10, groups >= 10
    fitted = model().fit(X[train], y[train])
    held_out = fitted.predict(X[test])
    fitted.calibrate(y=y[test], predictions=held_out, strata=strata[test])
    scale = np.log1p if fitted.log_targets_[0] else np.asarray
    residual = np.abs(scale(y[test]) - scale(held_out))
    per_stratum = []
    for name in ("easy", "hard"):
        scores = np.sort(residual[strata[test] == name])
        per_stratum.append(scores[int(np.ceil((len(scores) + 1) * 0.9)) - 1])
    assert fitted.conformal_quantiles_ == [pytest.approx(max(per_stratum))]
    assert max(per_stratum) > min(per_stratum)
    with pytest.raises(ValueError, match="strata"):
        fitted.calibrate(y=y[test], predictions=held_out, strata=strata)
    with pytest.raises(ValueError, match="strata"):
        model().fit(X[train], y[train], groups=groups[train], strata=strata)
