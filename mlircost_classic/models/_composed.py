"""Module costs composed from predicted kernels: partition, predict, aggregate.

:class:`ComposedCostModel` splits each module into the dispatches IREE would
form (:func:`~mlircost_classic.featurize.partition_dispatches`), predicts every
dispatch with a kernels model (by default the shipped one, fitted on IREE's own
executable sources) and aggregates the kernel predictions the way the collector
aggregates measured kernels into module labels (:data:`AGGREGATION`). A module
model learns those aggregates from the whole text and extrapolates badly to
programs unlike its training families; the kernels it is made of are familiar.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import GroupKFold
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted

from ..datasets import TARGETS, clip_to_domain, resolve_target
from ..featurize import DispatchRegion, dispatch_kind, partition_dispatches
from ..featurize._base import PARALLEL_CHUNK, BaseMLIRFeaturizer, _collector_paused
from ..featurize._partition import read_region
from ._base import TextInputMixin, _per_document, check_targets
from ._cost_model import (
    CostModel,
    _calibration_name,
    _group_conformal_quantile,
    _stratified_quantile,
    default_estimator,
    default_featurizer,
)

__all__ = [
    "AGGREGATION",
    "ComposedCostModel",
    "compose_regions",
    "cross_val_compose",
    "kernel_calls",
]

#: Metric -> how the module's value combines its kernels' values: the
#: ``aggregate`` of the target table (:data:`~mlircost_classic.datasets.TARGETS`),
#: as the collector aggregates measured kernels: ``calls`` sums calls x
#: per-call value, ``sum`` adds one value per executable, ``max`` / ``min`` over
#: executables, ``count`` counts executables. Any other metric (latencies) is
#: predicted from the composed instruction count (``proxy``).
AGGREGATION = {
    t.metric.name: t.aggregate for t in TARGETS.values() if t.aggregate is not None
}
_PROXY = "cpu_x86_64_v3.instructions"
_FORMAT = 1


def kernel_calls(record: dict) -> dict[str, int]:
    """Kernel id -> times the module record runs it (1 where not recorded).

    Parameters
    ----------
    record : dict
        A module record (its ``kernels`` list and, when collected, its
        ``kernel_calls`` object).

    Returns
    -------
    dict of str -> int
    """
    calls = record.get("kernel_calls") or {}
    return {k: int(calls.get(k, 1)) for k in record.get("kernels") or ()}


def _rule(target: str) -> str:
    return AGGREGATION.get(target.partition(".")[2], "proxy")


def compose_regions(
    kernel_model: CostModel, regions: list, target_names: list[str]
) -> tuple[np.ndarray, list]:
    """Module targets aggregated from a kernels model's predictions on regions.

    The kernels model runs once on every region of every module (one batch);
    each module target then combines its regions' predictions by its rule
    (:data:`AGGREGATION`; a target without one, a latency, is the composed
    instruction count): ``calls`` sums calls x per-call value, ``sum`` adds
    one value per executable, ``max`` / ``min`` over executables (NaN where
    none is predicted), ``count`` counts executables.

    Parameters
    ----------
    kernel_model : CostModel
        A fitted kernels model.
    regions : list of list of DispatchRegion
        Each module's dispatch regions (any objects with ``text`` and
        ``calls``).
    target_names : list of str
        Module targets.

    Returns
    -------
    raw : ndarray of shape (n_modules, n_targets)
    details : list of (regions, kernel predictions) per module
        The module's regions and an array (n_regions, n kernel targets) in the
        kernels model's columns.
    """
    return _aggregate(
        kernel_model, regions, _predict_regions(kernel_model, regions), target_names
    )


def _kernels_model(kernel_model) -> CostModel:
    """A ``kernel_model`` parameter's fitted model: the shipped one, a saved one, or itself."""
    if isinstance(kernel_model, CostModel):
        check_is_fitted(kernel_model, "estimators_")
        return kernel_model
    if kernel_model == "pretrained":
        from ._pretrained import load_pretrained  # noqa: PLC0415 - import cycle

        return load_pretrained(kind="kernels")
    return CostModel.load(kernel_model)


def _predict_regions(kernel_model: CostModel, regions: list) -> np.ndarray:
    """The kernels model's predictions of every region of every module, one batch."""
    kernel_names = list(kernel_model.target_names_)
    texts = [r.text for rs in regions for r in rs]
    if not texts:
        return np.zeros((0, len(kernel_names)))
    if isinstance(getattr(kernel_model, "featurizer_", None), BaseMLIRFeaturizer):
        # the records its featurizer would read, each region's wrapper
        # read once per name (read_region), not once per region
        texts = _read_regions(texts, kernel_model.featurizer_)
    K = np.asarray(kernel_model.predict(texts), float)
    return K.reshape(len(texts), len(kernel_names))


#: Inside :func:`shared_compositions`: (kernels model, partitioner, texts)
#: -> (regions, kernel predictions).
_SHARED: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "mlircost_shared_compositions", default=None
)


@contextlib.contextmanager
def shared_compositions():
    """Compose each module once for every model that asks within this block.

    The composed and the stacked answers of one
    :class:`~mlircost_classic.models.PerTargetCostModel` call partition the
    same modules and run the same kernels model on the same regions; inside
    this block the second asks for what the first made (the same numbers:
    the same batch of regions). Outside it nothing is kept.
    """
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _compose_texts(
    kernel_model: CostModel, texts: list, partitioner: str, target_names: list[str]
) -> tuple[np.ndarray, list]:
    """:func:`compose_regions` of the texts' regions (shared in :func:`shared_compositions`)."""
    memo = _SHARED.get()
    # An estimator hashes and compares by identity: the same fitted model.
    key = (kernel_model, partitioner, tuple(texts))
    hit = None if memo is None else memo.get(key)
    if hit is None:
        partition = _PARTITIONERS[partitioner]
        regions = [partition(text) for text in texts]
        hit = regions, _predict_regions(kernel_model, regions)
        if memo is not None:
            memo[key] = hit
    return _aggregate(kernel_model, *hit, target_names)


def _aggregate(kernel_model, regions: list, K: np.ndarray, target_names) -> tuple:
    """``compose_regions``' aggregation of kernel predictions ``K`` by module."""
    kernel_names = list(kernel_model.target_names_)
    sizes = np.array([len(rs) for rs in regions], int)
    owner = np.repeat(np.arange(len(regions)), sizes)
    calls = np.array([r.calls for rs in regions for r in rs], float)
    column = {t: j for j, t in enumerate(kernel_names)}
    rules = [_rule(t) for t in target_names]
    sources = [
        _PROXY if rule == "proxy" else t
        for t, rule in zip(target_names, rules, strict=True)
    ]
    raw = np.full((len(regions), len(target_names)), np.nan)
    have = [j for j, source in enumerate(sources) if source in column]
    V = K[:, [column[sources[j]] for j in have]]
    summed = np.zeros((len(regions), len(have)))
    np.add.at(summed, owner, np.nan_to_num(V))
    weighted = np.zeros((len(regions), len(have)))
    np.add.at(weighted, owner, np.nan_to_num(V * calls[:, None]))
    most = np.full((len(regions), len(have)), np.nan)
    np.fmax.at(most, owner, V)
    least = np.full((len(regions), len(have)), np.nan)
    np.fmin.at(least, owner, V)
    by_rule = {"sum": summed, "calls": weighted, "proxy": weighted}
    by_rule |= {"max": most, "min": least}
    for k, j in enumerate(have):
        if rules[j] in by_rule:
            raw[:, j] = by_rule[rules[j]][:, k]
    for j, rule in enumerate(rules):
        if rule == "count":
            raw[:, j] = sizes
    starts = np.concatenate([[0], np.cumsum(sizes)])
    details = [(rs, K[starts[i] : starts[i + 1]]) for i, rs in enumerate(regions)]
    return raw, details


def _read_regions(texts: list[str], featurizer: BaseMLIRFeaturizer) -> list:
    """The regions' texts read as ``featurizer`` would read them.

    In one process only (a text is cheaper sent to a joblib worker than its
    records); a text that cannot be read is left as it is, for the
    featurizer's ``on_error`` to judge.
    """
    if featurizer.input != "content" or (
        featurizer.n_jobs not in (None, 1) and len(texts) > PARALLEL_CHUNK
    ):
        return texts
    out = []
    with _collector_paused():
        for text in texts:
            try:
                out.append(read_region(text))
            except Exception:  # noqa: BLE001 - read again, and judged, by the featurizer
                out.append(text)
    return out


def iree_regions(text: str) -> list[DispatchRegion]:
    """IREE's own dispatch regions of a module (the ``[collect]`` extra).

    The exact counterpart of :func:`~mlircost_classic.featurize.partition_dispatches`:
    ``iree-compile`` forms the dispatches (up to ``executable-sources``, no
    code generation; see :func:`~mlircost_classic.collect.iree_dispatches`)
    and each executable source, the document the kernels dataset holds, is
    one region, called as many times as the program dispatches it.

    Parameters
    ----------
    text : str
        MLIR text of a linalg module.

    Returns
    -------
    list of DispatchRegion
        In IREE's dispatch order; ``lines`` are empty.

    Raises
    ------
    ImportError
        If the ``[collect]`` extra or ``iree-compile`` is not installed.
    RuntimeError
        If ``iree-compile`` fails on the text (its message says why).
    """
    # The one place prediction may run a compiler: only when asked to.
    from ..collect import iree_dispatches  # noqa: PLC0415
    from ..collect._toolchain import ToolError, find_tools  # noqa: PLC0415

    if find_tools().iree_compile is None:
        raise ImportError(
            "partitioner='iree' needs iree-compile: install the [collect] extra "
            "(pip install 'mlircost_classic[collect]'), or use partitioner='python'"
        )
    try:
        found = iree_dispatches(text)
    except ToolError as exc:
        raise RuntimeError(
            f"iree-compile could not form the dispatches: {exc}"
        ) from exc
    return [
        DispatchRegion(name, dispatch_kind(name), source, calls, ())
        for name, source, calls in found
    ]


_PARTITIONERS = {"python": partition_dispatches, "iree": iree_regions}


def cross_val_compose(
    X,
    groups,
    kernels,
    target_names,
    *,
    kernel_model: CostModel | None = None,
    n_splits: int = 5,
    partitioner: str = "python",
    models_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw aggregates of each module from a kernels model that never saw its group.

    ``GroupKFold`` over the modules' groups (family or architecture): for each
    fold a clone of ``kernel_model`` is fitted on the kernels of the other
    folds' groups only, and the held-out modules are composed from its
    predictions on their dispatch regions. These are the composed model's
    out-of-fold answers for programs of an unseen family, the ones to
    calibrate and score it on (:meth:`ComposedCostModel.fit` with ``raw=`` and
    ``groups=``): composed with a kernels model fitted on their own kernels,
    modules look far better predicted than new ones will be.

    Parameters
    ----------
    X : sequence of str
        Module texts (linalg on tensors).
    groups : array-like of shape (n_modules,)
        Group of each module; a kernel's group is ``kernels.groups`` (the
        family of the first module it was seen in).
    kernels : Bunch
        Kernel training data as :func:`~mlircost_classic.datasets.load_dataset`
        returns it for ``"kernels"``: ``data``, ``target``, ``target_names``,
        ``groups``.
    target_names : list of str
        Module targets to compose.
    kernel_model : CostModel, optional
        Unfitted kernels model, cloned per fold; default the shipped kernels
        model's settings, ``CostModel(featurizer=default_featurizer("kernels"),
        random_state=0)`` (no intervals: only points are composed).
    n_splits : int, default=5
        Folds (at most the number of groups).
    partitioner : {"python", "iree"}, default="python"
        As in :class:`ComposedCostModel`.
    models_dir : path-like, optional
        Folder keeping each fold's fitted kernels model (``kernel_model`` a
        :class:`CostModel`), named by a digest of its training kernels' ids,
        its parameters and targets: a later call whose fold trains on the same
        kernels loads it instead of fitting it again (composing the same
        modules with other partition rules then takes minutes, not the fits'
        half hour). Folds that train on other kernels fit new models.

    Returns
    -------
    raw : ndarray of shape (n_modules, n_targets)
        Uncalibrated aggregates, as :meth:`ComposedCostModel.compose` gives.
    folds : ndarray of shape (n_modules,)
        Fold of each module.
    """
    X = list(X)
    groups = np.asarray(groups, dtype=object)
    if len(groups) != len(X):
        raise ValueError(f"{len(X)} modules but {len(groups)} groups")
    base = (
        CostModel(featurizer=default_featurizer("kernels"), random_state=0)
        if kernel_model is None
        else kernel_model
    )
    partition = _PARTITIONERS[partitioner]
    regions = [partition(text) for text in X]
    raw = np.full((len(X), len(target_names)), np.nan)
    folds = np.full(len(X), -1)
    splitter = GroupKFold(n_splits=min(n_splits, len(set(groups))))
    for k, (_, test) in enumerate(splitter.split(X, groups=groups)):
        model, _ = _kernels_model_without(base, kernels, groups[test], models_dir)
        raw[test] = compose_regions(model, [regions[i] for i in test], target_names)[0]
        folds[test] = k
    return raw, folds


def _kernels_model_without(base, kernels, groups, models_dir=None):
    """A clone of ``base`` fitted on the kernels of every group but ``groups``.

    The kernels model of one fold of :func:`cross_val_compose` (whose
    ``models_dir`` it shares): a kernel's group is ``kernels.groups``, the
    family of the first module it was seen in.

    Returns
    -------
    model : CostModel
        Fitted, or loaded from ``models_dir`` when a fit on the same kernels
        is kept there.
    left_out : ndarray of bool, shape (n_kernels,)
        The kernels of ``groups``, which the model never saw.
    """
    left_out = np.isin(np.asarray(kernels.groups, dtype=object), list(set(groups)))
    keep = np.flatnonzero(~left_out)
    return _fold_model(base, kernels, keep, models_dir), left_out


def fit_settings(model: CostModel, n_rows: int) -> list[tuple[str, str]]:
    """``model``'s parameters as sorted ``(name, repr)`` pairs, for keys of kept fits.

    With ``estimator=None`` also the boosters it stands for
    (:func:`default_estimator` below :data:`DEEP_ROWS` rows and at ``n_rows``
    rows), so that a change of the default booster is a new fit, not a kept
    one.
    """
    params = sorted((k, repr(v)) for k, v in model.get_params().items())
    if model.estimator is None:
        params += [
            (
                f"default_estimator({n})",
                repr(sorted(default_estimator(n).get_params().items())),
            )
            for n in (None, n_rows)
        ]
    return params


def _fold_model(base, kernels, keep, models_dir) -> CostModel:
    """A clone of ``base`` fitted on kernels ``keep`` (see ``models_dir`` of
    :func:`cross_val_compose`)."""
    names = list(kernels.target_names)

    def fit():
        target = np.asarray(kernels.target)
        return clone(base).fit(
            [kernels.data[i] for i in keep], target[keep], target_names=names
        )

    if models_dir is None:
        return fit()
    if type(base) is not CostModel:
        raise TypeError(f"models_dir keeps CostModel fits, not {type(base).__name__}")
    ids = sorted(str(kernels.ids[i]) for i in keep)
    key = json.dumps([ids, names, fit_settings(base, len(keep))])
    path = Path(models_dir) / f"kernels-{hashlib.sha256(key.encode()).hexdigest()[:24]}"
    if path.exists():
        return CostModel.load(path)
    model = fit()
    model.save(path)
    return model


class ComposedCostModel(TextInputMixin, RegressorMixin, BaseEstimator):
    """Module targets aggregated from a kernels model's dispatch predictions.

    Prediction: partition each module into dispatch regions, predict each
    region's kernel targets with ``kernel_model``, and aggregate per module
    target by the collector's rule (:data:`AGGREGATION`: sum of code bytes and
    spills, calls x per-call instructions, max of registers / VGPRs / SGPRs /
    stack / LDS, min of occupancy, number of dispatches). Fitting learns only a
    monotone calibration per target on the training modules: ``log1p(y) = a +
    b log1p(composed)`` for sums and proxies, ``y = a + b composed`` for maxima
    and minima (dispatch counts are not calibrated), and with
    ``intervals="conformal"`` the split-conformal half-width of its residuals.

    Modules composed by a kernels model fitted on their own kernels are better
    predicted than new programs will be. Given ``raw=`` (each training module's
    aggregates from a kernels model that did not see its group:
    :func:`cross_val_compose`) and ``groups=``, :meth:`fit` calibrates on those
    instead, and the intervals are cross-conformal over the groups (each
    module's score is its residual under the line fitted on the other folds'
    groups): intervals for programs of an unseen family.

    Parameters
    ----------
    kernel_model : "pretrained", path-like or CostModel, default="pretrained"
        The fitted kernels model: the shipped one, one saved with
        :meth:`CostModel.save`, or a fitted instance (used as is).
    partitioner : {"python", "iree"}, default="python"
        Where the dispatch regions come from: the Python partitioner
        (:func:`~mlircost_classic.featurize.partition_dispatches`, no compiler,
        milliseconds), or IREE itself (:func:`iree_regions`: the compiler's own
        split, seconds per module, needs the ``[collect]`` extra).
    calibrate : bool, default=True
        Fit the per-target calibration (else the raw aggregates are predicted).
    intervals : {"conformal"} or None, default=None
        Calibrate prediction intervals (:meth:`predict_interval`).
    confidence : float, default=0.9
        Target coverage of the intervals.
    calibration_size : float, default=0.2
        Share of each target's rows held out for the interval's residuals
        (split conformal, when :meth:`fit` gets no ``groups``).
    calibration_folds : int, default=5
        Folds of the group calibration (when :meth:`fit` gets ``groups``).
    random_state : int or None, default=None
        Seeds the calibration split.

    Attributes
    ----------
    kernel_model_ : CostModel
        The kernels model used.
    target_names_ : list of str
    rules_ : list of str
        Aggregation rule of each target.
    log_targets_ : list of bool
        Whether each target's calibration is on the log scale.
    coef_ : ndarray of shape (n_targets, 2)
        Intercept and slope of each target's calibration.
    conformal_quantiles_ : list of float
        Interval half-width per target; only with ``intervals="conformal"``.
    calibration_ : {"group", "random"}
        How the intervals were calibrated: on held-out groups (cross-conformal)
        or on a random split; only with ``intervals="conformal"``.

    Examples
    --------
    >>> from mlircost_classic.models import ComposedCostModel
    >>> model = ComposedCostModel(calibrate=False).fit(
    ...     [text], [[1.0]], target_names=["cpu_x86_64_v3.dispatches"]
    ... )  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        "kernel_model": [StrOptions({"pretrained"}), str, os.PathLike, CostModel],
        "partitioner": [StrOptions(set(_PARTITIONERS))],
        "calibrate": ["boolean"],
        "intervals": [StrOptions({"conformal"}), None],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
        "calibration_size": [Interval(Real, 0, 1, closed="neither")],
        "calibration_folds": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        kernel_model="pretrained",
        partitioner="python",
        calibrate=True,
        intervals=None,
        confidence=0.9,
        calibration_size=0.2,
        calibration_folds=5,
        random_state=None,
    ):
        self.kernel_model = kernel_model
        self.partitioner = partitioner
        self.calibrate = calibrate
        self.intervals = intervals
        self.confidence = confidence
        self.calibration_size = calibration_size
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    # -- composition ----------------------------------------------------------
    def _load_kernels(self) -> CostModel:
        return _kernels_model(self.kernel_model)

    def compose(self, X) -> tuple[np.ndarray, list]:
        """Raw aggregates (before calibration) and the regions behind them.

        Parameters
        ----------
        X : iterable of str
            Module texts (linalg on tensors).

        Returns
        -------
        raw : ndarray of shape (n_modules, n_targets)
        details : list of (regions, kernel predictions) per module
            The :class:`~mlircost_classic.featurize.DispatchRegion` list and an
            array (n_regions, n kernel targets) in the kernels model's columns.
        """
        check_is_fitted(self, "kernel_model_")
        return self._compose(X)

    @staticmethod
    def _texts(X) -> list:
        if isinstance(X, str):
            raise TypeError("X must be an iterable of MLIR texts, not one string")
        return list(X)

    def _regions(self, X) -> list[list[DispatchRegion]]:
        partition = _PARTITIONERS[self.partitioner]
        return [partition(text) for text in self._texts(X)]

    def _compose(self, X) -> tuple[np.ndarray, list]:
        return _compose_texts(
            self.kernel_model_, self._texts(X), self.partitioner, self.target_names_
        )

    # -- fitting --------------------------------------------------------------
    def fit(self, X, y, target_names=None, *, groups=None, raw=None, strata=None):
        """Load the kernels model and calibrate each module target.

        Parameters
        ----------
        X : iterable of str
            Module texts.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Measured module targets, NaN where missing.
        target_names : list of str, optional
            Names of the target columns (``<hardware>.<metric>``).
        groups : array-like of shape (n_samples,), optional
            Family or architecture of each module: the intervals are then
            calibrated on held-out groups (cross-conformal over
            ``GroupKFold(calibration_folds)``) instead of a random split.
        raw : array-like of shape (n_samples, n_targets), optional
            The modules' raw aggregates to calibrate on, in the columns of
            ``y`` (:func:`cross_val_compose`); default: composed here with the
            kernels model.
        strata : array-like of shape (n_samples,), optional
            Stratum of each module (its source): each target's half-width is
            the largest of the strata's (as :meth:`CostModel.fit` does).

        Returns
        -------
        self
        """
        self._validate_params()
        Y, names, self._ndim = check_targets(y, target_names)
        X = list(X)
        if len(X) != Y.shape[0]:
            raise ValueError(f"X has {len(X)} documents but y has {Y.shape[0]} rows")
        self._set_targets(names)
        if raw is None:
            raw, _ = self._compose(X)
        raw = np.asarray(raw, float).reshape(Y.shape[0], -1)
        if raw.shape != Y.shape:
            raise ValueError(f"raw has shape {raw.shape}, y has {Y.shape}")
        groups, strata = (
            _per_document(values, name, Y.shape[0])
            for values, name in ((groups, "groups"), (strata, "strata"))
        )
        rng = np.random.default_rng(self.random_state)
        quantiles = []
        for j in range(len(names)):
            rows = np.flatnonzero(~np.isnan(Y[:, j]) & ~np.isnan(raw[:, j]))
            x, t = self._scale(raw[:, j], j), self._scale(Y[:, j], j)
            if self.intervals and groups is None:
                order = rng.permutation(rows)
                n_cal = round(self.calibration_size * len(rows))
                calibration, train = order[:n_cal], order[n_cal:]
                self.coef_[j] = self._fit_line(x[train], t[train], j)
                scores = np.abs(t[calibration] - self._line(x[calibration], j))
                held = None if strata is None else strata[calibration]
                quantiles.append(_stratified_quantile(scores, held, self.confidence))
                continue
            self.coef_[j] = self._fit_line(x[rows], t[rows], j)
            if self.intervals:
                held = None if strata is None else strata[rows]
                quantiles.append(
                    self._group_quantile(x, t, rows, groups[rows], j, held)
                )
        if self.intervals:
            self.conformal_quantiles_ = quantiles
            self.calibration_ = _calibration_name(groups, strata)
        return self

    def _fit_line(self, x: np.ndarray, t: np.ndarray, j: int) -> np.ndarray:
        """Intercept and slope of target ``j``'s calibration (identity if none)."""
        if (
            self.calibrate
            and self.rules_[j] != "count"
            and len(x) >= 2
            and np.ptp(x) > 0
        ):
            slope, intercept = np.polyfit(x, t, 1)
            return np.array([intercept, slope])
        return np.array([0.0, 1.0])

    def _group_quantile(self, x, t, rows, groups, j: int, strata=None) -> float:
        """Cross-conformal half-width: residuals under other groups' lines."""

        def scores(train, test):
            intercept, slope = self._fit_line(x[rows[train]], t[rows[train]], j)
            return np.abs(t[rows[test]] - (intercept + slope * x[rows[test]]))

        return _group_conformal_quantile(
            groups, self.calibration_folds, self.confidence, scores, strata
        )

    def _set_targets(self, names: list[str]) -> None:
        self.kernel_model_ = self._load_kernels()
        self.target_names_ = names
        self.rules_ = [_rule(t) for t in names]
        self.log_targets_ = [r in ("calls", "sum", "proxy") for r in self.rules_]
        self.coef_ = np.tile([0.0, 1.0], (len(names), 1))

    @classmethod
    def from_kernels(
        cls, target_names, kernel_model="pretrained", partitioner="python"
    ) -> ComposedCostModel:
        """A model ready to predict the raw aggregates, without fitting.

        Parameters
        ----------
        target_names : list of str
            Module targets to predict (``<hardware>.<metric>``).
        kernel_model : "pretrained", path-like or CostModel, default="pretrained"
            As in the class parameters.
        partitioner : {"python", "iree"}, default="python"
            As in the class parameters.

        Returns
        -------
        ComposedCostModel
            Uncalibrated (``calibrate=False``), without intervals: no module
            label is used.
        """
        model = cls(kernel_model=kernel_model, partitioner=partitioner, calibrate=False)
        model._validate_params()
        model._set_targets(list(target_names))
        model._ndim = 2
        return model

    def _scale(self, v: np.ndarray, j: int) -> np.ndarray:
        return np.log1p(np.maximum(v, 0.0)) if self.log_targets_[j] else v

    def _line(self, x: np.ndarray, j: int) -> np.ndarray:
        intercept, slope = self.coef_[j]
        return intercept + slope * x

    def _margins(self, X) -> np.ndarray:
        """Calibrated margins of every target (log scale for sums), one pass."""
        raw, _ = self._compose(X)
        log = np.asarray(self.log_targets_, bool)
        raw[:, log] = np.log1p(np.maximum(raw[:, log], 0.0))
        return self.coef_[:, 0] + self.coef_[:, 1] * raw

    def _unscaled(self, m: np.ndarray) -> np.ndarray:
        log = np.asarray(self.log_targets_, bool)
        out = m.copy()
        out[:, log] = np.maximum(np.expm1(m[:, log]), 0.0)
        return clip_to_domain(out, self.target_names_)

    def _shaped(self, out: np.ndarray) -> np.ndarray:
        return out[:, 0] if self._ndim == 1 else out

    # -- prediction -----------------------------------------------------------
    def predict(self, X) -> np.ndarray:
        """Module targets of each text.

        Parameters
        ----------
        X : iterable of str
            Module texts.

        Returns
        -------
        ndarray of shape (n_samples, n_targets), or (n_samples,) when fitted on 1-D y
        """
        check_is_fitted(self, "coef_")
        return self._shaped(self._unscaled(self._margins(X)))

    def predict_interval(self, X, *, return_prediction: bool = False):
        """Conformal intervals around :meth:`predict` (multiplicative for sums; see ``calibration_``).

        Parameters
        ----------
        X : iterable of str
            Module texts.
        return_prediction : bool, default=False
            Also return the point prediction, first.

        Returns
        -------
        prediction : ndarray, only with ``return_prediction=True``
        lower, upper : ndarray
        """
        check_is_fitted(self, "coef_")
        if self.intervals is None:
            raise ValueError(
                "this ComposedCostModel was fitted without intervals; "
                "fit it with intervals='conformal' to get predict_interval"
            )
        m = self._margins(X)
        q = np.asarray(self.conformal_quantiles_)
        parts = [self._shaped(self._unscaled(p)) for p in (m, m - q, m + q)]
        return tuple(parts) if return_prediction else tuple(parts[1:])

    def novelty(self, X) -> list[list[str]]:
        """Why each module's regions are far from the kernels model's training data.

        Parameters
        ----------
        X : iterable of str
            Module texts.

        Returns
        -------
        list of list of str
            Per module, the kernels model's reasons (:meth:`CostModel.novelty`)
            for each of its regions, prefixed with the region's name.
        """
        check_is_fitted(self, "kernel_model_")
        regions = self._regions(X)
        found = iter(self.kernel_model_.novelty([r.text for rs in regions for r in rs]))
        return [
            [f"{r.name}: {reason}" for r in rs for reason in next(found)]
            for rs in regions
        ]

    def explain_kernels(self, text: str, target: str) -> list[dict]:
        """The dispatches behind one module's prediction, largest share first.

        Parameters
        ----------
        text : str
            One module text.
        target : str
            A target name (or an unambiguous part of one, see
            :func:`~mlircost_classic.models.resolve_target`).

        Returns
        -------
        list of dict
            One per dispatch region: ``name``, ``kind``, ``calls``, ``value``
            (the kernels model's prediction for it, per call), ``total``
            (what it adds to the aggregate: calls x value for instructions) and
            ``share`` of the aggregate (for max / min targets, 1 for the
            dispatches that reach it, else 0), sorted by share.
        """
        check_is_fitted(self, "coef_")
        j = resolve_target(self.target_names_, target)
        rule = self.rules_[j]
        _, [(regions, block)] = self._compose([text])
        names = list(self.kernel_model_.target_names_)
        source = _PROXY if rule == "proxy" else self.target_names_[j]
        values = (
            block[:, names.index(source)] if source in names else np.ones(len(regions))
        )
        calls = np.array([r.calls for r in regions], float)
        totals = values * calls if rule in ("calls", "proxy") else values
        if rule in ("max", "min"):
            best = np.nanmax(totals) if rule == "max" else np.nanmin(totals)
            shares = (totals == best).astype(float)
        else:
            whole = np.nansum(totals)
            shares = totals / whole if whole else np.zeros(len(regions))
        rows = [
            {
                "name": r.name,
                "kind": r.kind,
                "calls": r.calls,
                "value": float(v),
                "total": float(t),
                "share": float(s),
            }
            for r, v, t, s in zip(regions, values, totals, shares, strict=True)
        ]
        return sorted(rows, key=lambda row: -row["share"])

    # -- persistence ----------------------------------------------------------
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write the model as a folder: ``manifest.json`` (+ the kernels model).

        No pickle: the calibration is plain JSON; a kernels model other than
        the shipped one is written beside it with :meth:`CostModel.save`.

        Parameters
        ----------
        path : path-like
            Folder to write.
        overwrite : bool, default=False
            Replace an existing model at ``path``.
        """
        check_is_fitted(self, "coef_")
        path = Path(path)
        if path.exists() and any(path.iterdir()) and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        path.mkdir(parents=True, exist_ok=True)
        kernels = "pretrained"
        if self.kernel_model != "pretrained":
            self.kernel_model_.save(path / "kernels.zip", overwrite=True)
            kernels = "kernels.zip"
        manifest = {
            "class": "ComposedCostModel",
            "format": _FORMAT,
            "params": {
                "partitioner": self.partitioner,
                "calibrate": self.calibrate,
                "intervals": self.intervals,
                "confidence": self.confidence,
                "calibration_size": self.calibration_size,
                "calibration_folds": self.calibration_folds,
                "random_state": self.random_state,
            },
            "kernel_model": kernels,
            "target_names": self.target_names_,
            "rules": self.rules_,
            "log_targets": self.log_targets_,
            "coef": self.coef_.tolist(),
            "conformal_quantiles": getattr(self, "conformal_quantiles_", None),
            "calibration": getattr(self, "calibration_", None),
            "ndim": self._ndim,
        }
        text = json.dumps(manifest, indent=1, allow_nan=True)
        (path / "manifest.json").write_text(text, encoding="utf-8")

    @classmethod
    @validate_params(
        {"path": [str, os.PathLike], "kernel_model": [CostModel, None]},
        prefer_skip_nested_validation=True,
    )
    def load(
        cls, path: str | os.PathLike, kernel_model: CostModel | None = None
    ) -> ComposedCostModel:
        """Read a model written by :meth:`save` (runs no code from the files).

        Parameters
        ----------
        path : path-like
            The folder.
        kernel_model : CostModel, optional
            A fitted kernels model to use instead of reading the one the
            folder names (one already loaded, not read a second time).

        Returns
        -------
        ComposedCostModel
        """
        path = Path(path)
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        if (
            manifest.get("class") != "ComposedCostModel"
            or manifest.get("format") != _FORMAT
        ):
            raise ValueError(
                f"{path} is not a saved ComposedCostModel this release reads"
            )
        kernels = manifest["kernel_model"]
        named = "pretrained" if kernels == "pretrained" else str(path / kernels)
        model = cls(kernel_model=named, **manifest["params"])
        if kernel_model is not None:
            check_is_fitted(kernel_model, "estimators_")
        model.kernel_model_ = (
            model._load_kernels() if kernel_model is None else kernel_model
        )
        model.target_names_ = manifest["target_names"]
        model.rules_ = manifest["rules"]
        model.log_targets_ = manifest["log_targets"]
        model.coef_ = np.asarray(manifest["coef"], float)
        model._ndim = manifest["ndim"]
        if manifest["conformal_quantiles"] is not None:
            model.conformal_quantiles_ = [
                float(q) for q in manifest["conformal_quantiles"]
            ]
            model.calibration_ = manifest.get("calibration") or "random"
        return model
