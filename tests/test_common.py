"""The scikit-learn contract of every estimator of the package, in one place.

Numeric estimators go through sklearn's ``parametrize_with_checks`` with their
expected failures listed (none today: a new one must be added here on purpose,
with the reason). Estimators that take raw MLIR text get only what sklearn can
run without data (``check_estimator`` skips the rest for them), plus the checks
below: predicting and transforming leave a fitted estimator unchanged, and
``GridSearchCV`` with ``GroupKFold`` runs on a slice of the bundled dataset.
Style of imbalanced-learn's ``tests/test_common.py``.
"""

from __future__ import annotations

import configparser
import copy
from pathlib import Path

import joblib
import numpy as np
import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks
from xgboost import XGBRegressor

from mlircost_classic import load_dataset
from mlircost_classic.featurize import (
    MLIRFeaturizer,
    OpcodeCounter,
    OpNgramTfidf,
    ShapeFeatures,
)
from mlircost_classic.models import (
    CostModel,
    NeuralTextRegressor,
    PriorRegressor,
    RooflineBaseline,
    explain,
)

ROOT = Path(__file__).resolve().parents[1]

# -- numeric estimators: all of sklearn's common checks --------------------------
NUMERIC = [
    PriorRegressor(LinearRegression(), columns=[0]),
    PriorRegressor(Ridge(), columns=[0, 1]),
    PriorRegressor(XGBRegressor(n_estimators=5, max_depth=2, n_jobs=1), columns=[0]),
]

#: Check name -> why it fails, per estimator class. Empty: every check passes.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {"PriorRegressor": {}}


def expected_failed_checks(estimator) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS[type(estimator).__name__]


@parametrize_with_checks(NUMERIC, expected_failed_checks=expected_failed_checks)
def test_numeric_estimators(estimator, check):
    check(estimator)


# -- text estimators: the checks that need no data ------------------------------
TEXT = [
    OpcodeCounter(),
    OpNgramTfidf(),
    ShapeFeatures(),
    MLIRFeaturizer(),
    CostModel(),
    CostModel(estimator=Ridge(), intervals="conformal"),
    RooflineBaseline(),
    NeuralTextRegressor(),
]
DATA_FREE_CHECKS = [
    estimator_checks.check_estimator_cloneable,
    estimator_checks.check_estimator_repr,
    estimator_checks.check_estimator_tags_renamed,
    estimator_checks.check_valid_tag_types,
    estimator_checks.check_no_attributes_set_in_init,
    estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
    estimator_checks.check_mixin_order,
    estimator_checks.check_parameters_default_constructible,
    estimator_checks.check_get_params_invariance,
    estimator_checks.check_set_params,
]


def short(estimator) -> str:
    return type(estimator).__name__


@pytest.mark.parametrize("check", DATA_FREE_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("estimator", TEXT, ids=short)
def test_text_estimators_data_free_checks(estimator, check):
    check(type(estimator).__name__, copy.deepcopy(estimator))


def elementwise(n: int, op: str) -> str:
    return f"""func.func @f(%a: tensor<{n}xf32>) -> tensor<{n}xf32> {{
  %0 = {op} %a, %a : tensor<{n}xf32>
  return %0 : tensor<{n}xf32>
}}"""


TEXTS = [
    elementwise(2**i, op)
    for i in range(2, 12)
    for op in ("arith.addf", "arith.mulf", "math.exp")
]
# Labels of these API tests only: a size-driven count and a share.
Y = np.column_stack(
    [
        [2.0**i * (1 + k) for i in range(2, 12) for k in range(3)],
        [min(1.0, 0.1 * i) for i in range(2, 12) for _ in range(3)],
    ]
)
NAMES = ["cpu_x86_64_v3.instructions", "nvidia_sm80.occupancy"]


def fitted(estimator):
    if isinstance(estimator, (CostModel, RooflineBaseline)):
        return estimator.fit(TEXTS, Y, target_names=NAMES)
    return estimator.fit(TEXTS)


UNCHANGED = [
    OpcodeCounter(),
    OpNgramTfidf(),
    ShapeFeatures(),
    MLIRFeaturizer(),
    CostModel(estimator=XGBRegressor(n_estimators=10, n_jobs=1), random_state=0),
    CostModel(estimator=Ridge(), intervals="conformal", random_state=0),
    RooflineBaseline(),
]


@pytest.mark.parametrize("estimator", UNCHANGED, ids=short)
def test_predict_and_transform_leave_the_estimator_unchanged(estimator):
    estimator = fitted(estimator)
    before = joblib.hash(estimator)
    if hasattr(estimator, "transform"):
        estimator.transform(TEXTS[:1])
        estimator.transform(TEXTS)
    else:
        # One row (the compiled-forest path) and many rows (per-target calls).
        estimator.predict(TEXTS[:1])
        estimator.predict(TEXTS)
        estimator.score(TEXTS, Y)
        if getattr(estimator, "intervals", None):
            estimator.predict_interval(TEXTS[:1], return_prediction=True)
        if isinstance(estimator, CostModel):
            explain(estimator, TEXTS[0], "instructions")
    assert joblib.hash(estimator) == before


# -- model selection on real data ------------------------------------------------
def test_grid_search_with_group_kfold_on_the_bundled_data():
    bunch = load_dataset(targets=["instructions", "nvidia_h100.latency_us"])
    # The shortest programs of five families: real labels, a fast test.
    families = sorted(set(bunch.groups))[:5]
    rows = [
        i
        for family in families
        for i in sorted(
            np.flatnonzero(bunch.groups == family), key=lambda i: len(bunch.data[i])
        )[:8]
    ]
    X = [bunch.data[i] for i in rows]
    y = bunch.target[rows]
    assert np.isnan(y).any(), "the slice should hold missing targets"
    search = GridSearchCV(
        CostModel(
            featurizer=MLIRFeaturizer(ngrams="drop"),
            estimator=XGBRegressor(n_estimators=10, n_jobs=1),
            random_state=0,
        ),
        {"estimator__max_depth": [1, 3]},
        cv=GroupKFold(n_splits=3),
        error_score="raise",
    ).fit(X, y, groups=bunch.groups[rows])
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.predict(X[:2]).shape == (2, 2)


# -- declared dependency floors ----------------------------------------------------
def test_dependency_floors_have_the_apis_the_package_uses():
    # sklearn.utils.get_tags, __sklearn_tags__ and validate_data came with
    # scikit-learn 1.6; xgboost supports them from 2.1.4. The tests of models,
    # featurizers and this file pass with scikit-learn 1.6.1 and xgboost 2.1.4.
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    requirements = {
        (r := Requirement(line)).name: r
        for line in config["options"]["install_requires"].strip().splitlines()
    }
    floors = {
        name: min(
            Version(spec.version)
            for spec in requirements[name].specifier
            if spec.operator == ">="
        )
        for name in ("scikit-learn", "xgboost")
    }
    assert floors["scikit-learn"] >= Version("1.6")
    assert floors["xgboost"] >= Version("2.1.4")
