"""Reports on fitted cost models: importance, explanations, plots, benchmark.

:func:`build_report` fits the cost models on part of the dataset and writes,
per target, held-out metrics, predicted-against-measured plots, feature
importance (xgboost gain, permutation importance, SHAP values, linear
coefficients) and one HTML page tying them together. The figures need
matplotlib (extra ``[report]``); the importance functions do not.
:func:`run_benchmark` compares every model (:func:`benchmark_models`) on the
same folds and writes ``results.csv``, ``results.md`` and plots;
:func:`update_readme` copies its headline tables into the README. The
benchmark is split into its models (``_bench_models``), its runs
(``_bench_runs``) and their rendering (``_bench_render``); the project's goals
live in ``benchmarks/goals.py``.
"""

from ._bench_models import MODEL_NAMES, benchmark_models
from ._bench_render import update_readme
from ._bench_runs import run_benchmark
from ._importance import (
    gain_importance,
    linear_coefficients,
    permutation_importances,
    shap_values,
)
from ._report import IMPORTANCE_COLUMNS, METRIC_COLUMNS, build_report

__all__ = [
    "IMPORTANCE_COLUMNS",
    "MODEL_NAMES",
    "METRIC_COLUMNS",
    "benchmark_models",
    "build_report",
    "gain_importance",
    "linear_coefficients",
    "permutation_importances",
    "run_benchmark",
    "shap_values",
    "update_readme",
]
