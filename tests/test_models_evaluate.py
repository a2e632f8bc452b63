"""Metrics against hand-computed values, and the evaluation protocol on a tiny set.

The labels here are made up for API tests only.
"""

import math
import re

import numpy as np
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

from mlircost_classic.featurize import MLIRFeaturizer
from mlircost_classic.models import (
    METRICS,
    CostModel,
    RooflineBaseline,
    evaluate,
    interval_coverage,
    kendall,
    mape,
    median_ape,
    op_templates,
    pairwise_ranking_accuracy,
    r2_log,
    spearman,
    spill_classification,
)

NAN = float("nan")


# -- metrics ------------------------------------------------------------------
def test_mape_and_median_ape_leave_out_zero_and_nan_truths():
    y = [100.0, 200.0, 0.0, NAN, 50.0]
    p = [110.0, 150.0, 7.0, 1.0, 50.0]
    # relative errors 0.1, 0.25, 0.0 (the 0 truth and the NaN row are left out)
    assert mape(y, p) == pytest.approx((0.1 + 0.25 + 0.0) / 3)
    assert median_ape(y, p) == pytest.approx(0.1)
    assert math.isnan(mape([0.0, NAN], [1.0, 2.0]))


def test_rank_correlations():
    y = [1.0, 2.0, 3.0, 4.0, NAN]
    p = [10.0, 20.0, 40.0, 30.0, 5.0]
    # ranks of p: 1 2 4 3 -> sum d^2 = 2 -> 1 - 6*2 / (4*15)
    assert spearman(y, p) == pytest.approx(0.8)
    # 5 concordant and 1 discordant pairs out of 6
    assert kendall(y, p) == pytest.approx(4 / 6)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))
    assert math.isnan(kendall([1.0], [1.0]))


def test_r2_log():
    y = np.expm1([0.0, 1.0, 2.0])
    p = np.expm1([0.0, 1.0, 1.0])
    # residuals on log scale 0, 0, 1; total sum of squares 2
    assert r2_log(y, p) == pytest.approx(0.5)
    assert r2_log(y, [-5.0, *p[1:]]) == pytest.approx(0.5)  # clipped to 0
    assert math.isnan(r2_log([-1.0, 2.0], [1.0, 2.0]))


def test_pairwise_ranking_accuracy_within_groups():
    y = [1, 2, 3, 1, 2, 7]
    p = [1, 3, 2, 5, 6, 0]
    groups = ["a", "a", "a", "b", "b", "c"]
    # a: 2 of 3 pairs right; b: 1 of 1; c has no pair
    assert pairwise_ranking_accuracy(y, p, groups) == pytest.approx(3 / 4)
    # tied predictions count half; pairs with tied truths do not count
    assert pairwise_ranking_accuracy([1, 2, 2], [4, 4, 4]) == pytest.approx(0.5)
    # without groups every pair counts: (1,2) right, (1,3) right, (2,3) wrong
    assert pairwise_ranking_accuracy([1, 2, 3], [1, 3, 2]) == pytest.approx(2 / 3)
    assert math.isnan(pairwise_ranking_accuracy([1, 2], [1, 2], ["a", "b"]))


def test_interval_coverage_per_column():
    y = np.array([[1.0, 5.0], [2.0, NAN], [3.0, 0.0]])
    lower = np.zeros_like(y)
    upper = np.array([[1.0, 4.0], [1.0, 4.0], [4.0, 4.0]])
    np.testing.assert_allclose(interval_coverage(y, lower, upper), [2 / 3, 1 / 2])
    assert interval_coverage([1.0], [0.0], [2.0]) == 1.0
    with pytest.raises(ValueError, match="one shape"):
        interval_coverage([1.0, 2.0], [0.0], [2.0])


def test_metrics_refuse_mismatched_lengths():
    with pytest.raises(ValueError, match="same length"):
        mape([1.0, 2.0], [1.0])


# -- evaluate -----------------------------------------------------------------
def elementwise(n: int, op: str) -> str:
    return f"""func.func @f(%a: tensor<{n}xf32>) -> tensor<{n}xf32> {{
  %0 = {op} %a, %a : tensor<{n}xf32>
  return %0 : tensor<{n}xf32>
}}"""


FAMILIES = {"add": "arith.addf", "mul": "arith.mulf", "sub": "arith.subf"}
TEXTS = [elementwise(2**i, op) for op in FAMILIES.values() for i in range(2, 8)]
GROUPS = [family for family in FAMILIES for _ in range(2, 8)]


def made_up_targets() -> np.ndarray:
    rng = np.random.default_rng(0)
    Y = np.column_stack(
        [np.exp(rng.normal(4, 1, len(TEXTS))), rng.uniform(1, 2, len(TEXTS))]
    )
    Y[0, 1] = NAN
    return Y


def quick(**kwargs):
    return evaluate(
        X=TEXTS,
        Y=made_up_targets(),
        target_names=["cost", "other"],
        groups=GROUPS,
        latency_repeats=2,
        batch_size=8,
        batch_repeats=1,
        **kwargs,
    )


def test_group_folds_hold_out_whole_families():
    # A mean regressor's out-of-fold prediction is the mean of the other
    # families' rows exactly when each fold holds out one whole family.
    Y = made_up_targets()
    mean = CostModel(estimator=DummyRegressor(), log_target=False, prior=None)
    _, predictions = quick(models={"mean": mean}, n_splits=3, return_predictions=True)
    groups = np.asarray(GROUPS)
    for j in range(2):
        for family in FAMILIES:
            others = Y[groups != family, j]
            expected = np.nanmean(others)
            np.testing.assert_allclose(
                predictions["mean"][groups == family, j], expected
            )


def test_op_templates_ignore_sizes_and_interface_plumbing():
    from mlircost_classic.datasets import read_records, shard_paths

    assert list(op_templates(TEXTS[:3])) == ["arith.addf"] * 3
    assert op_templates([TEXTS[0], TEXTS[-1]])[1] == "arith.subf"
    # Real dispatches: f32 matmuls of other sizes, with their own offsets.
    matmuls = {}
    for rec in read_records(shard_paths("kernels")[0]):
        if m := re.search(r"_matmul_(\d+x\d+x\d+)_f32$", rec["name"]):
            matmuls.setdefault(m.group(1), rec["ir"]["dispatch"])
    assert len(matmuls) >= 2
    templates = set(op_templates(list(matmuls.values())))
    assert len(templates) < len(matmuls)
    for template in templates:
        assert "linalg.matmul" in template.split()
        assert not {"arith.constant", "tensor.empty"} & set(template.split())


def test_template_folds_hold_out_whole_templates():
    # Families that cut across the op templates: the family split would train
    # on every template; the template split holds each one out whole.
    Y = made_up_targets()
    mean = CostModel(estimator=DummyRegressor(), log_target=False, prior=None)
    crossing = ["even", "odd"] * (len(TEXTS) // 2)
    _, predictions = evaluate(
        {"mean": mean},
        TEXTS,
        Y,
        ["cost", "other"],
        crossing,
        cv="template",
        n_splits=3,
        latency_repeats=1,
        batch_size=2,
        batch_repeats=1,
        return_predictions=True,
    )
    templates = op_templates(TEXTS)
    for j in range(2):
        for template in set(templates):
            np.testing.assert_allclose(
                predictions["mean"][templates == template, j],
                np.nanmean(Y[templates != template, j]),
            )


def test_table_has_every_model_target_and_metric():
    pytest.importorskip("pandas")
    models = {
        "xgboost": CostModel(random_state=0),
        "ridge": CostModel(estimator=Ridge(), intervals="conformal", random_state=0),
        "roofline": RooflineBaseline(),
        "pipeline": make_pipeline(MLIRFeaturizer(ngrams="drop"), Ridge()),
    }
    table = quick(models=models, n_splits=3)
    assert set(table["model"]) == set(models)
    for name in models:
        rows = table[table["model"] == name]
        for target, measured in (("cost", 18), ("other", 17)):
            per_target = rows[rows["target"] == target]
            assert set(METRICS) <= set(per_target["metric"])
            assert (per_target["n"] == measured).all()
        timings = rows[rows["target"] == "*"].set_index("metric")
        assert (timings["value"] > 0).all()
        assert timings.loc["latency_batch_ms", "n"] == 8
    coverage = table[table["metric"] == "coverage"]
    assert set(coverage["model"]) == {"ridge"}
    assert coverage["value"].between(0, 1).all()


def test_random_split_and_list_output():
    rows = quick(
        models={"roofline": RooflineBaseline()}, cv="random", n_splits=3, as_frame=False
    )
    assert isinstance(rows, list) and isinstance(rows[0], dict)
    assert set(rows[0]) == {"model", "target", "metric", "value", "n"}
    spearman_rows = [r for r in rows if r["metric"] == "spearman"]
    assert len(spearman_rows) == 2


def test_spill_classification_scores():
    truth = [0.0, 0.0, 8.0, 16.0, NAN, 4.0]
    pred = [0.2, 3.0, 9.0, 0.4, 5.0, NAN]
    # Rows 4 and 5 lack a side; a spill is predicted from 0.5 up.
    assert spill_classification(truth, pred) == {
        "spill_precision": 0.5,
        "spill_recall": 0.5,
        "spill_f1": 0.5,
        "spill_share": 0.5,
    }
    missed = spill_classification([0.0, 4.0], [0.0, 0.0])
    assert math.isnan(missed["spill_precision"]) and missed["spill_f1"] == 0.0
    quiet = spill_classification([0.0, 0.0], [0.0, 0.4])
    assert math.isnan(quiet["spill_f1"]) and quiet["spill_share"] == 0.0
    assert (
        spill_classification([0.0, 4.0], [1.0, 1.0], threshold=2.0)["spill_recall"] == 0
    )


def test_spill_targets_get_a_classification_score():
    Y = made_up_targets()
    spills = np.where(np.arange(len(TEXTS)) % 3 == 0, 0.0, Y[:, 0])
    Y = np.column_stack([Y[:, 0], spills])
    names = ["cost", "nvidia_sm80.spill_bytes"]
    table, oof = evaluate(
        {"roofline": RooflineBaseline()},
        TEXTS,
        Y,
        names,
        GROUPS,
        n_splits=3,
        latency_repeats=1,
        batch_size=4,
        batch_repeats=1,
        as_frame=False,
        return_predictions=True,
    )
    scored = {(r["target"], r["metric"]): r["value"] for r in table}
    expected = spill_classification(Y[:, 1], oof["roofline"][:, 1])
    for metric, value in expected.items():
        assert scored[("nvidia_sm80.spill_bytes", metric)] == pytest.approx(
            value, nan_ok=True
        )
    assert scored[("nvidia_sm80.spill_bytes", "spill_share")] == pytest.approx(2 / 3)
    assert not any(t == "cost" and m.startswith("spill_") for t, m in scored)


def test_group_split_needs_groups():
    with pytest.raises(ValueError, match="needs groups"):
        evaluate({"roofline": RooflineBaseline()}, TEXTS, made_up_targets())
    with pytest.raises(ValueError, match="'group', 'template', 'random'"):
        evaluate(
            {"roofline": RooflineBaseline()}, TEXTS, made_up_targets(), cv="leave-out"
        )
