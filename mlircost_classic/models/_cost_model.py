"""The cost model: MLIR text -> one regressor per hardware target."""

from __future__ import annotations

import math
import os
from numbers import Integral, Real

import numpy as np
from scipy import stats
from sklearn.base import clone
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from xgboost import XGBRegressor

from ..datasets import TARGETS, clip_to_domain
from ..featurize import MLIRFeaturizer, ShapeFeatures
from ..featurize._base import _check_documents
from . import _serialize
from ._base import PerTargetRegressor, _Inputs, _per_document, log_wrapped
from ._forest import compile_forest
from ._prior import PriorRegressor
from ._unwrap import unwrap

__all__ = [
    "DEEP_ROWS",
    "ROOFLINE_COLUMNS",
    "CostModel",
    "default_estimator",
    "default_featurizer",
]

# Families of estimators whose fit depends on the scale of the features; tree
# ensembles (xgboost, sklearn.ensemble) do not care.
_SCALE_SENSITIVE = (
    "sklearn.linear_model",
    "sklearn.svm",
    "sklearn.neighbors",
    "sklearn.kernel_ridge",
    "sklearn.gaussian_process",
    "sklearn.neural_network",
)

#: Up to this many rows, xgboost models predict through one
#: :class:`~mlircost_classic.models._forest.CompiledForest` for all targets;
#: above it, through xgboost itself (``inplace_predict``, one call per target,
#: in ``n_jobs`` threads). Measured, one core, CPU time, shipped models, trees
#: stored level by level (2026-12-05, load 8): the forest takes 0.01x
#: xgboost's time at one kernel row, 0.20x at 32, 0.43x at 128, 0.59-0.67x at
#: 256, 0.99x at 1,024 (kernels model: 18 targets, 10,800 trees of depth 6,
#: ~0.25 ms a row); 0.41x at 256 module rows, 0.61-0.76x at 1,024-2,000. Above
#: 256 rows xgboost stays: its per-target threads with ``n_jobs=2`` predict
#: 2,000 kernels in 0.36-0.41 s wall against the forest's 0.63 s (the forest's
#: blocks in two threads took twice the CPU time, 0.7-0.8 s wall), and
#: batches keep xgboost's numbers.
FAST_PATH_ROWS = 256

#: ``predict`` of at most this many feature cells reads the featurizer's dense
#: rows (``_dense_rows``) into the compiled forest, without a sparse matrix.
_DENSE_ROWS_CELLS = 1 << 16

#: Columns of the roofline prior (``prior="roofline"``): the log1p FLOP and
#: byte estimates of :class:`~mlircost_classic.featurize.ShapeFeatures`, by name
#: in an :class:`~mlircost_classic.featurize.MLIRFeaturizer` and alone.
ROOFLINE_COLUMNS = (
    ("shapes__log1p FLOPs total", "shapes__log1p bytes moved total"),
    ("log1p FLOPs total", "log1p bytes moved total"),
)

#: Skewness above which a non-negative target is fitted on the log scale when
#: ``log_target="auto"``.
SKEW_THRESHOLD = 1.0

#: From this many measured rows of a target on, :func:`default_estimator` grows
#: deeper and longer boosters (the kernels dataset's targets have ~13,000 rows,
#: the modules' ~2,000).
DEEP_ROWS = 5000

#: Histogram bins per feature of :func:`default_estimator`'s shallow booster.
SHALLOW_MAX_BIN = 64


def default_estimator(n_samples: int | None = None) -> XGBRegressor:
    """The regressor :class:`CostModel` fits per target when given none.

    Row / column subsampling and a small learning rate: most features are
    sparse counts. Below :data:`DEEP_ROWS` rows (or when ``n_samples`` is
    None), 300 trees of depth 4 at a learning rate of 0.05: the modules
    datasets have a few thousand rows. From :data:`DEEP_ROWS` rows on, 300
    trees of depth 8 at 0.1: a shallower booster underfits the kernels
    dataset's ~35,000 IREE dispatches, squeezing the rare large ones toward
    the mean (600 trees of depth 6 at 0.05, its booster until session 33,
    predicted the bundled kernels with 390 VGPRs or more at a median of about
    half their label, in sample), and a module's largest register, VGPR and SGPR counts
    are those rare kernels. Out of fold on the bundled kernels (GroupKFold(5)
    by architecture cluster, the shipped featurizer, 2026-12-07), depth 6 ->
    8: AMD VGPRs 0.958 -> 0.961 (600 trees at 0.05: 0.963; depth 10: 0.964),
    sm_80 registers 0.944 -> 0.953 (600 trees), SGPRs 0.936 -> 0.941 (600
    trees); the top 5% of VGPR labels predicted at a median 0.82 -> 0.88 of
    their value; the largest predicted VGPRs of an OOD module's own IREE
    dispatches rank the modules at 0.55 -> 0.61. With half the trees the fit
    takes 1.26x as long and a row is fewer tree steps (5,400 trees of 8
    levels instead of 10,800 of 6: one kernel's ``predict`` 1.00 -> 0.91 ms
    with the shipped models, old then new in one process). Session 20 went from depth
    4 to 6 for the same reason (sm_80 registers 0.868 -> 0.897 then). The
    shallow booster bins each feature into at most 64 histogram bins
    (:data:`SHALLOW_MAX_BIN`; xgboost's default of 256 for the deep one):
    on the bundled linalg modules, by family / architecture (GroupKFold, 5
    folds, 2026-12-06), 64 bins fit 2.2-2.6x faster with Spearman within
    +-0.006 of 256 bins on the ten main targets (sm_80 registers 0.811 ->
    0.815, AMD VGPRs 0.875 -> 0.874, SGPRs 0.752 -> 0.759, x86 code bytes
    0.909 -> 0.912, dispatches 0.950 -> 0.947). One thread per booster;
    :class:`CostModel` fits targets in parallel instead (``n_jobs``).

    Parameters
    ----------
    n_samples : int, optional
        Rows the regressor will be fitted on.

    Returns
    -------
    XGBRegressor
        Unfitted.
    """
    deep = n_samples is not None and n_samples >= DEEP_ROWS
    return XGBRegressor(
        n_estimators=300,
        learning_rate=0.1 if deep else 0.05,
        max_depth=8 if deep else 4,
        min_child_weight=1.0,
        subsample=0.8,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        tree_method="hist",
        max_bin=256 if deep else SHALLOW_MAX_BIN,
        n_jobs=1,
    )


#: Module aggregations of a target that one dispatch sets (its largest or
#: smallest value): no roofline prior with ``prior="extensive"``.
INTENSIVE_AGGREGATES = ("max", "min")


def _takes_prior(prior, target: str | None) -> bool:
    """Whether ``target``'s regressor is boosted from the roofline under ``prior``."""
    if prior != "extensive" or target is None:
        return True
    known = TARGETS.get(target)
    return known is None or known.aggregate not in INTENSIVE_AGGREGATES


def default_prior(kind: str = "modules") -> str:
    """The ``prior`` of the shipped model of ``kind`` (``mlircost train``).

    Modules and stacked models: ``"extensive"`` (no roofline for a dispatch's
    largest or smallest value). Held out by cluster of same-design
    architectures (``benchmarks/composed_ood.py --prior``, 2,659 linalg
    modules, 2026-12-07), the stacked model with it against the roofline on
    every target ranked the held-out networks' sm_80 registers 0.886 -> 0.893,
    sm_90 0.892 -> 0.896, AMD VGPRs 0.781 -> 0.797, SGPRs 0.779 -> 0.774, LDS
    0.882 -> 0.901; the modules model's registers 0.839 -> 0.857 and 0.846 ->
    0.864 (on the OOD suite 0.791 -> 0.881 and 0.763 -> 0.836). Kernels and
    variants models: ``"auto"``.
    """
    return "extensive" if kind in ("modules", "stacked") else "auto"


def default_featurizer(kind: str = "modules") -> MLIRFeaturizer:
    """The featurizer of the shipped models of ``kind`` (unfitted).

    Modules (and variants): ``MLIRFeaturizer()``. Kernels: the same with the
    heaviest op's loop extents one by one
    (``ShapeFeatures(root_loops=True)``, see
    :data:`~mlircost_classic.featurize.ROOT_LOOP_FEATURES`): a GPU compiler
    picks a dispatch's tiles, and so its registers, from its root op's M, N
    and K, which the default columns give only as products. On the bundled
    kernels, by family (GroupKFold, 5 folds, 31,481 kernels;
    ``benchmarks/root_loops.py``), they raise the Spearman of sm_80 registers
    0.928 -> 0.946, sm_90 0.926 -> 0.944, AMD VGPRs 0.949 -> 0.959, SGPRs
    0.922 -> 0.933 and x86 code bytes 0.956 -> 0.964. Since session 35 also
    the same loops as a contraction's M, N and K
    (``ShapeFeatures(root_dims=True)``, see
    :data:`~mlircost_classic.featurize.ROOT_DIM_FEATURES`): refitted on the
    bundled kernels (two seeds, their bag;
    ``benchmarks/kernels_refit_ood.py --seeds 1 2 [--no-root-dims]``), the
    OOD suite's 1,447 unbundled kernels went sm_80 registers 0.936 -> 0.953,
    sm_90 0.937 -> 0.952, AMD VGPRs 0.950 -> 0.957, x86 code bytes 0.984 ->
    0.984. A whole module's heaviest op says little of its dispatches, so the
    modules models keep the default.

    Parameters
    ----------
    kind : {"modules", "kernels", "variants", "stacked"}, default="modules"
        ``"stacked"``: the modules featurizer beside the module's composed
        aggregates from the shipped kernels model
        (:class:`~mlircost_classic.models.StackedFeaturizer`).

    Returns
    -------
    MLIRFeaturizer or StackedFeaturizer
    """
    if kind == "kernels":
        return MLIRFeaturizer(shapes=ShapeFeatures(root_loops=True, root_dims=True))
    if kind == "stacked":
        from ._stacked import StackedFeaturizer  # noqa: PLC0415 - it imports CostModel

        return StackedFeaturizer()
    return MLIRFeaturizer()


def _scale_sensitive(estimator) -> bool:
    return type(estimator).__module__.startswith(_SCALE_SENSITIVE)


def _scores(estimator, F, y) -> np.ndarray:
    """Absolute residuals of a fitted estimator, on the scale it was fitted on."""
    parts = unwrap(estimator)
    truth = np.log1p(y) if parts.log else y
    return np.abs(truth - parts.fitted_scale.predict(F))


def _conformal_quantile(scores: np.ndarray, confidence: float) -> float:
    """The ``ceil((n + 1) * confidence)``-th smallest score; inf when n is too small."""
    k = math.ceil((len(scores) + 1) * confidence)
    if k > len(scores):
        return math.inf
    return float(np.sort(scores)[k - 1])


def _stratified_quantile(scores, strata, confidence: float) -> float:
    """The largest of the strata's conformal quantiles (pooled when ``strata`` is None).

    Each stratum (for example a data source) gets its own
    :func:`_conformal_quantile`; the half-width is the largest finite one, so
    that the interval holds at ``confidence`` for a new program exchangeable
    with any one stratum, whichever it is. A stratum too small for a finite
    quantile is left out unless every stratum is.
    """
    scores = np.asarray(scores, dtype=float)
    if strata is None:
        return _conformal_quantile(scores, confidence)
    strata = np.asarray(strata, dtype=object)
    if strata.shape != scores.shape:
        raise ValueError(f"{scores.shape[0]} scores but {strata.shape[0]} strata")
    quantiles = [
        _conformal_quantile(scores[strata == stratum], confidence)
        for stratum in sorted(set(strata.tolist()), key=str)
    ]
    finite = [q for q in quantiles if math.isfinite(q)]
    return max(finite) if finite else math.inf


def _group_conformal_quantile(
    groups, n_folds: int, confidence: float, scores, strata=None
) -> float:
    """Cross-conformal half-width over ``GroupKFold``: every score is on a group left out.

    ``scores(train, test)`` fits on the ``train`` rows and returns the absolute
    residuals of the ``test`` rows; inf with fewer than two groups. With
    ``strata`` (one per row), the largest of the strata's quantiles
    (:func:`_stratified_quantile`).
    """
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        return math.inf
    folds = GroupKFold(n_splits=min(n_folds, n_groups))
    pooled, rows = [], []
    for train, test in folds.split(groups, groups=groups):
        pooled.append(scores(train, test))
        rows.append(test)
    held = None if strata is None else np.asarray(strata, object)[np.concatenate(rows)]
    return _stratified_quantile(np.concatenate(pooled), held, confidence)


def _calibration_name(groups, strata) -> str:
    """What ``calibration_`` records for a fit with or without groups and strata."""
    name = "random" if groups is None else "group"
    return name if strata is None else f"{name}, largest of the strata"


class CostModel(PerTargetRegressor):
    """Predict hardware costs of MLIR programs: one regressor per target.

    The documents are featurized once (:class:`~mlircost_classic.MLIRFeaturizer`
    by default) and one clone of ``estimator`` is fitted per target column, on
    the rows where that target is measured (NaN elsewhere). Skewed non-negative
    targets (instruction counts, latencies) are fitted on ``log1p`` of their
    values through :class:`~sklearn.compose.TransformedTargetRegressor`, so that
    every module weighs the same whatever its size. Estimators that depend on
    the feature scale (linear models, SVMs, neighbours, ...) get a
    ``StandardScaler(with_mean=False)`` in front, which keeps the n-gram block
    sparse.

    With ``prior="roofline"`` each regressor is boosted from a roofline: per
    target, a least-squares fit of the (log) target on ``log1p`` of the
    estimated FLOPs and bytes moved comes first, and the regressor learns what
    it leaves (:class:`~mlircost_classic.models.PriorRegressor`). Trees alone
    cannot predict beyond the largest cost they saw; the prior extrapolates
    with module size, and the trees correct it. On the bundled modules this
    raises the leave-family-out Spearman of every size-driven target (see the
    README's benchmark).

    Prediction intervals (``intervals="conformal"``) are split conformal: for
    each target a random ``calibration_size`` share of its rows is held out, the
    regressor is fitted on the rest, and the interval half-width is the
    ``ceil((n_cal + 1) * confidence)``-th smallest absolute residual on the
    held-out rows (on the log scale for log targets, giving multiplicative
    intervals). This guarantees a marginal coverage of at least ``confidence``
    for new modules exchangeable with the training ones, which modules of an
    unseen family are not: measure it with
    :func:`~mlircost_classic.models.interval_coverage`. The price is that the
    point model sees only the training share of the rows. When too few rows are
    held out for the confidence asked, the interval is unbounded.

    Given ``groups`` (the family or architecture of each document),
    :meth:`fit` calibrates on held-out groups instead: cross-conformal over
    ``GroupKFold(calibration_folds)``, each target's score of a row being its
    residual under the model fitted on the other folds' groups, and the point
    model fitted on all rows. Such intervals are wider, and they are what holds
    for programs of an architecture never seen in training: fitted on 20
    bundled kernels per family, the 90% intervals of four targets cover 0.74
    to 0.98 of the OOD suite's kernels when calibrated on a random split, 0.88
    to 0.96 on held-out families, at up to 3x the width on instructions
    (``benchmarks/intervals.py``). The guarantee is then approximate (the fold models are not the final one,
    and groups differ in size), and costs ``calibration_folds`` extra fits per
    target. :meth:`novelty` says when a document lies outside the training data,
    where no calibration holds.

    Given ``strata`` too (the source of each document: the program families,
    torchvision, transformers), each stratum's held-out scores give their own
    half-width and the largest is kept: the interval then holds for a program
    like any one stratum's held-out groups, whichever it resembles. Pooled, the
    easy strata hide the hard one: on the bundled kernels, held out by family,
    the pooled 90% half-width of sm_80 registers covers the families' kernels
    at 0.81 and the OOD suite's at 0.84; the largest of the three sources'
    covers them at 0.90 and 0.91, and the networks' kernels at 0.97
    (``benchmarks/kernel_intervals.py``).

    Parameters
    ----------
    featurizer : transformer, default=None
        Turns documents into a feature matrix; None means ``MLIRFeaturizer()``.
        Cloned at fit, never shared.
    estimator : regressor, default=None
        Fitted per target (cloned); None means :func:`default_estimator`
        (an ``XGBRegressor``, deeper for targets with :data:`DEEP_ROWS` rows
        or more). Any sklearn regressor works; only xgboost and
        ``sklearn.linear_model`` regressors can be saved.
    log_target : "auto" or bool, default="auto"
        Fit on ``log1p(y)``: ``"auto"`` does it for targets that are
        non-negative with a sample skewness above 1 (:data:`SKEW_THRESHOLD`),
        True for every target (all must be non-negative), False for none.
    prior : {"auto", "roofline", "extensive"} or None, default="auto"
        Boost every regressor from the roofline fit of its target (see above).
        ``"auto"`` does it when the featurizer has the roofline's columns
        (:data:`ROOFLINE_COLUMNS`; the default featurizer has), ``"roofline"``
        requires them, None fits the regressors on the targets alone.
        ``"extensive"`` is ``"auto"`` for the targets that grow with a
        program (instructions, code bytes, spills, latencies: a module's value
        is a sum over its dispatches or has no rule) and no prior for those
        that are the largest or smallest value of one dispatch (registers,
        VGPRs, SGPRs, occupancy, shared / LDS / stack / scratch bytes: see
        :data:`~mlircost_classic.datasets.TARGETS`' ``aggregate``), which a
        power law of the program's FLOPs extrapolates wrongly: a larger
        program does not need more registers per thread.
    intervals : {"conformal"} or None, default=None
        Whether to calibrate prediction intervals (:meth:`predict_interval`).
    confidence : float, default=0.9
        Target coverage of the intervals.
    calibration_size : float, default=0.2
        Share of each target's rows held out for calibration (split
        conformal, when :meth:`fit` gets no ``groups``).
    calibration_folds : int, default=5
        Folds of the group calibration (when :meth:`fit` gets ``groups``).
    n_jobs : int, default=None
        Targets fitted in parallel with joblib, and predicted in that many
        threads when the estimators' own ``predict`` serves (batches above
        :data:`FAST_PATH_ROWS` rows).
    random_state : int, RandomState or None, default=None
        Seeds the calibration split and every per-target estimator that has a
        ``random_state`` parameter (one seed per target).

    Attributes
    ----------
    featurizer_ : transformer
        The fitted featurizer.
    target_names_ : list of str
        Target names, in column order.
    log_targets_ : list of bool
        Whether each target is fitted on the log scale.
    estimators_ : list
        The fitted regressor of each target; None for a target with no
        measured row (its predictions are NaN).
    conformal_quantiles_ : list of float
        Interval half-width of each target (log scale for log targets); only
        with ``intervals="conformal"``.
    calibration_ : str
        How the intervals were calibrated: ``"group"`` on held-out groups
        (cross-conformal), ``"random"`` on a random split, or as
        :meth:`calibrate` recorded it; only with ``intervals="conformal"``.
    training_ranges_ : dict of str -> [float, float]
        Range of each novelty feature over the training documents
        (:meth:`novelty`).
    n_features_ : int
        Number of features the regressors see.

    Examples
    --------
    >>> from sklearn.linear_model import Ridge
    >>> from mlircost_classic.models import CostModel
    >>> texts = [f'''func.func @f(%a: tensor<{n}xf32>) -> tensor<{n}xf32> {{
    ...   %0 = arith.addf %a, %a : tensor<{n}xf32>
    ...   return %0 : tensor<{n}xf32>
    ... }}''' for n in (4, 8, 16, 32)]
    >>> model = CostModel(estimator=Ridge()).fit(texts, [[4.0], [8.0], [16.0], [32.0]])
    >>> model.predict(texts[:1]).shape
    (1, 1)
    """

    _parameter_constraints: dict = {
        "featurizer": [HasMethods(["fit_transform", "transform"]), None],
        "estimator": [HasMethods(["fit", "predict"]), None],
        "log_target": [StrOptions({"auto"}), "boolean"],
        "prior": [StrOptions({"auto", "roofline", "extensive"}), None],
        "intervals": [StrOptions({"conformal"}), None],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
        "calibration_size": [Interval(Real, 0, 1, closed="neither")],
        "calibration_folds": [Interval(Integral, 2, None, closed="left")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        featurizer=None,
        estimator=None,
        log_target="auto",
        prior="auto",
        intervals=None,
        confidence=0.9,
        calibration_size=0.2,
        calibration_folds=5,
        n_jobs=None,
        random_state=None,
    ):
        self.featurizer = featurizer
        self.estimator = estimator
        self.log_target = log_target
        self.prior = prior
        self.intervals = intervals
        self.confidence = confidence
        self.calibration_size = calibration_size
        self.calibration_folds = calibration_folds
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- hooks of PerTargetRegressor -------------------------------------------
    def _make_featurizer(self):
        return MLIRFeaturizer() if self.featurizer is None else clone(self.featurizer)

    def _log_flags(self, Y: np.ndarray) -> list[bool]:
        flags = []
        for j in range(Y.shape[1]):
            y = Y[~np.isnan(Y[:, j]), j]
            non_negative = y.size > 0 and bool((y >= 0).all())
            if self.log_target == "auto":
                skewed = y.size > 2 and np.ptp(y) > 0 and stats.skew(y) > SKEW_THRESHOLD
                flags.append(non_negative and bool(skewed))
            elif self.log_target:
                if y.size and not non_negative:
                    raise ValueError(
                        f"log_target=True needs non-negative targets; column {j} "
                        f"has a minimum of {y.min()}"
                    )
                flags.append(True)
            else:
                flags.append(False)
        return flags

    def _make_estimator(
        self, log: bool, seed: int | None, n_samples: int, target: str | None = None
    ):
        if self.estimator is None:
            base = default_estimator(n_samples)
        else:
            base = clone(self.estimator)
        if seed is not None and "random_state" in base.get_params(deep=False):
            base.set_params(random_state=seed)
        if _scale_sensitive(base):
            base = make_pipeline(StandardScaler(with_mean=False), base)
        columns = self._prior_columns() if _takes_prior(self.prior, target) else None
        if columns is not None:
            base = PriorRegressor(base, columns)
        return log_wrapped(base) if log else base

    def _prior_columns(self) -> list[int] | None:
        """Feature columns of the roofline prior, or None without a prior."""
        if self.prior is None:
            return None
        try:
            names = [str(n) for n in self.featurizer_.get_feature_names_out()]
        except (AttributeError, NotImplementedError, ValueError, TypeError):
            names = []  # a featurizer without column names has no roofline columns
        for wanted in ROOFLINE_COLUMNS:
            if all(w in names for w in wanted):
                return [names.index(w) for w in wanted]
        if self.prior in ("auto", "extensive"):
            return None
        raise ValueError(
            "prior='roofline' needs the featurizer's columns "
            f"{' and '.join(repr(w) for w in ROOFLINE_COLUMNS[0])} (ShapeFeatures with "
            "log_scale=True, as in the default MLIRFeaturizer); use prior=None or "
            "prior='auto' with this featurizer"
        )

    def _fit_target(self, estimator, F, y, rng, groups=None, strata=None):
        if self.intervals is None:
            return estimator.fit(F, y), None
        if groups is not None:
            return self._fit_group_calibrated(estimator, F, y, groups, strata)
        n_cal = round(self.calibration_size * len(y))
        if n_cal < 1 or n_cal >= len(y):
            return estimator.fit(F, y), math.inf
        order = rng.permutation(len(y))
        calibration, train = order[:n_cal], order[n_cal:]
        estimator.fit(F[train], y[train])
        scores = _scores(estimator, F[calibration], y[calibration])
        held = None if strata is None else strata[calibration]
        return estimator, _stratified_quantile(scores, held, self.confidence)

    def _fit_group_calibrated(self, estimator, F, y, groups, strata=None):
        """Cross-conformal over GroupKFold: every score is on a group left out."""

        def scores(train, test):
            held_out = clone(estimator).fit(F[train], y[train])
            return _scores(held_out, F[test], y[test])

        quantile = _group_conformal_quantile(
            groups, self.calibration_folds, self.confidence, scores, strata
        )
        return estimator.fit(F, y), quantile

    # -- public -----------------------------------------------------------------
    def fit(self, X, y, target_names=None, groups=None, strata=None):
        """Featurize the documents once and fit one regressor per target.

        Parameters
        ----------
        X : iterable of str or ParsedModule
            MLIR documents.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Measured costs; NaN where a document lacks a target. Each target is
            fitted on its own measured rows.
        target_names : list of str, optional
            One name per target column (default: the DataFrame's columns, else
            ``target0``, ``target1``, ...).
        groups : array-like of shape (n_samples,), optional
            Family or architecture of each document. With
            ``intervals="conformal"``, the intervals are calibrated on held-out
            groups (see the class description); ignored without intervals.
        strata : array-like of shape (n_samples,), optional
            Stratum of each document (its source): with
            ``intervals="conformal"``, each target's half-width is the largest
            of the strata's (see the class description); ignored without
            intervals.

        Returns
        -------
        self
        """
        super().fit(X, y, target_names=target_names, groups=groups, strata=strata)
        if self.intervals is not None:
            self.conformal_quantiles_ = [
                math.inf if q is None else q for q in self._target_states
            ]
            self.calibration_ = _calibration_name(groups, strata)
        else:
            for name in ("conformal_quantiles_", "calibration_"):
                if hasattr(self, name):
                    delattr(self, name)
        self._compile()
        return self

    def _compile(self) -> None:
        """Build the fast path of the fitted boosters (at fit and load, never in predict)."""
        self._compiled_forest = compile_forest(self.estimators_, self.n_features_)

    def _fast_path(self, F):
        """The compiled forest when ``F`` is a few rows and there is one, else None."""
        if F.shape[0] > FAST_PATH_ROWS:
            return None
        return getattr(self, "_compiled_forest", None)

    def _predict_features(self, F) -> np.ndarray:
        out = None
        forest = self._fast_path(F)
        if forest is not None:
            out = forest.predict(F)
        if out is None:
            out = super()._predict_features(F)
        return self._non_negative_logs(out)

    def _non_negative_logs(self, out: np.ndarray) -> np.ndarray:
        # A log target was non-negative in training; expm1 of a negative margin
        # would give a cost just below 0.
        log = np.asarray(self.log_targets_, dtype=bool)
        out[:, log] = np.maximum(out[:, log], 0.0)
        return out

    def predict(self, X) -> np.ndarray:
        """Predict every target (see :meth:`PerTargetRegressor.predict`).

        A few documents (up to :data:`FAST_PATH_ROWS`, and a small enough
        feature block) featurized by a package featurizer whose ``transform``
        returns a sparse matrix (the default one) go to the compiled forest as
        the featurizer's dense rows (``_dense_rows``, zeros where the matrix
        stores nothing), without the matrix: the same numbers, 0.1-0.2 ms
        less for one kernel.
        """
        check_is_fitted(self, "estimators_")
        forest = getattr(self, "_compiled_forest", None)
        dense_rows = getattr(self.featurizer_, "_dense_rows", None)
        if (
            forest is None
            or dense_rows is None
            or getattr(self.featurizer_, "_sparse", False) is not True
        ):
            return super().predict(X)
        docs = _check_documents(X)
        if (
            len(docs) > FAST_PATH_ROWS
            or len(docs) * self.n_features_ > _DENSE_ROWS_CELLS
        ):
            return super().predict(docs)
        out = forest.predict(dense_rows(docs), zeros_missing=True)
        out = self._non_negative_logs(out)
        return self._shaped(clip_to_domain(out, self.target_names_))

    def predict_interval(self, X, *, return_prediction: bool = False):
        """Split-conformal prediction intervals (see the class description).

        Parameters
        ----------
        X : iterable of str or ParsedModule
            MLIR documents.
        return_prediction : bool, default=False
            Also return the point prediction (what :meth:`predict` gives),
            from the same featurization: one pass over the documents instead
            of two.

        Returns
        -------
        prediction : ndarray of the shape :meth:`predict` returns
            Only with ``return_prediction=True``, first.
        lower, upper : ndarray of the shape :meth:`predict` returns
            Interval bounds; ``(-inf, inf)`` (``(0, inf)`` for log targets,
            whose bounds, like their predictions, are never below 0) where
            calibration had too few rows. Bounds and predictions of a target
            of the target table are clipped to its domain (see :meth:`predict`).
        """
        check_is_fitted(self, "estimators_")
        if self.intervals is None:
            raise ValueError(
                "this CostModel was fitted without intervals; "
                "fit it with intervals='conformal' to get predict_interval"
            )
        F = self.featurizer_.transform(X)
        inputs = _Inputs(F)
        forest = self._fast_path(F)
        margins = forest.margins(F) if forest is not None else None
        point = np.full((F.shape[0], len(self.target_names_)), np.nan)
        lower = point.copy()
        upper = point.copy()
        for j, estimator in enumerate(self.estimators_):
            if estimator is None:
                continue
            q = self.conformal_quantiles_[j]
            if margins is not None:
                margin = margins[:, j]
            else:
                fitted_scale = unwrap(estimator).fitted_scale
                margin = fitted_scale.predict(inputs.for_estimator(estimator))
            point[:, j], lower[:, j], upper[:, j] = margin, margin - q, margin + q
            if self.log_targets_[j]:
                # A log target was non-negative in training: so are its bounds.
                point[:, j] = np.maximum(np.expm1(point[:, j]), 0.0)
                lower[:, j] = np.maximum(np.expm1(lower[:, j]), 0.0)
                upper[:, j] = np.maximum(np.expm1(upper[:, j]), 0.0)
        for values in (point, lower, upper):
            clip_to_domain(values, self.target_names_)
        bounds = self._shaped(lower), self._shaped(upper)
        return (self._shaped(point), *bounds) if return_prediction else bounds

    def calibrate(
        self, X=None, y=None, *, predictions=None, calibration="data", strata=None
    ):
        """Set the 90% (``confidence``) intervals from labelled programs the model never saw.

        Split conformal on a calibration set: each target's half-width is the
        ``ceil((n + 1) * confidence)``-th smallest absolute residual of its
        measured rows (on the log scale for log targets), and the interval
        holds for programs exchangeable with them. Use it to calibrate a
        fitted (or the shipped) model on programs like yours, or, with
        ``predictions``, on out-of-group predictions made elsewhere (for
        example by fold models whose inputs :meth:`fit`'s own calibration
        cannot reproduce: a :class:`StackedFeaturizer`'s composed columns come
        from a kernels model fitted on the training modules' own kernels, so
        the cross-conformal residuals of :meth:`fit` are too small).

        Parameters
        ----------
        X : iterable of str, optional
            The calibration documents; predicted here unless ``predictions``
            is given.
        y : array-like of shape (n_samples, n_targets)
            Their measured targets (NaN where missing), in the model's columns.
        predictions : array-like of shape (n_samples, n_targets), optional
            Point predictions of the same rows (what :meth:`predict` returns),
            instead of predicting ``X``.
        calibration : str, default="data"
            What to record as ``calibration_`` (for example ``"group"`` for
            out-of-group predictions).
        strata : array-like of shape (n_samples,), optional
            Stratum of each row (its source): each target's half-width is then
            the largest of the strata's conformal quantiles (a stratum too
            small for one is left out), as :meth:`fit` does with ``strata``.

        Returns
        -------
        self
            With ``conformal_quantiles_`` and ``calibration_`` set; a model
            fitted without intervals gets them (``intervals`` becomes
            ``"conformal"``). The point predictions do not change.
        """
        check_is_fitted(self, "estimators_")
        if (X is None) == (predictions is None):
            raise ValueError("give either X or predictions")
        Y = np.asarray(y, dtype=float).reshape(-1, len(self.target_names_))
        P = self.predict(X) if predictions is None else np.asarray(predictions, float)
        P = P.reshape(Y.shape)
        strata = _per_document(strata, "strata", Y.shape[0])
        quantiles = []
        for j, log in enumerate(self.log_targets_):
            rows = ~np.isnan(Y[:, j]) & ~np.isnan(P[:, j])
            if self.estimators_[j] is None or not rows.any():
                quantiles.append(math.inf)
                continue
            t, p = Y[rows, j], P[rows, j]
            if log:
                t, p = np.log1p(np.maximum(t, 0.0)), np.log1p(np.maximum(p, 0.0))
            held = None if strata is None else strata[rows]
            quantiles.append(_stratified_quantile(np.abs(t - p), held, self.confidence))
        self.intervals = "conformal"
        self.conformal_quantiles_ = quantiles
        self.calibration_ = str(calibration)
        return self

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write the fitted model without pickle.

        The result is a folder (or, when ``path`` ends in ``.zip``, a zip file)
        holding ``manifest.json`` (format version, package version, target
        names, log flags, conformal quantiles, the featurizer's parameters and
        learned state, linear coefficients) and one xgboost model per target in
        UBJSON. Loading it runs no code from the file.

        Parameters
        ----------
        path : path-like
            Folder or ``.zip`` file to write.
        overwrite : bool, default=False
            Replace an existing model at ``path``.

        Raises
        ------
        TypeError
            If the featurizer or an estimator cannot be written (only the
            package's featurizers, xgboost and ``sklearn.linear_model``
            regressors can).
        FileExistsError
            If ``path`` exists and ``overwrite`` is False.
        """
        check_is_fitted(self, "estimators_")
        _serialize.save_cost_model(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CostModel:
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : path-like
            The folder or ``.zip`` file.

        Returns
        -------
        CostModel

        Raises
        ------
        ValueError
            If the file is not a saved cost model or has a format version this
            release cannot read.
        """
        return _serialize.load_cost_model(cls, path)
