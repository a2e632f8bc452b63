"""Fast prediction for a few rows: every target's xgboost trees in flat arrays.

A compiler pass asks for one module at a time. xgboost's own predict costs
~0.1-0.5 ms of fixed overhead per call, and :class:`CostModel` calls it once per
target; :class:`CompiledForest` evaluates all trees of all targets in one set of
vectorised numpy steps (one per tree level) instead, from the boosters' own
JSON dump, and gives the same numbers (up to float32 summation order).

Only what :class:`CostModel` fits is covered: ``gbtree`` boosters with a
``reg:squarederror``-style identity link and numerical splits, optionally
boosted from a linear prior (:class:`~mlircost_classic.models.PriorRegressor`)
and inside a :class:`~sklearn.compose.TransformedTargetRegressor` with
``log1p`` / ``expm1``. :func:`compile_forest` returns None for anything else,
and the caller falls back to the estimators' own ``predict``.
"""

from __future__ import annotations

import json

import numpy as np
from scipy import sparse
from sklearn.compose import TransformedTargetRegressor

from ._unwrap import unwrap

__all__ = ["CompiledForest", "compile_forest"]

# Objectives whose prediction is the raw margin (sum of leaves + base score).
_IDENTITY_OBJECTIVES = {
    "reg:squarederror",
    "reg:absoluteerror",
    "reg:pseudohubererror",
    "reg:quantileerror",
}


def _parts(estimator):
    """(booster, log, prior, missing) of a supported estimator, or None.

    ``prior`` is None or (columns, coefficients, intercept) of a linear prior;
    ``missing`` is the value xgboost reads as missing (NaN by default).
    """
    if isinstance(estimator, TransformedTargetRegressor) and (
        estimator.func is not np.log1p
        or estimator.inverse_func is not np.expm1
        or estimator.transformer is not None
    ):
        return None
    parts = unwrap(estimator)
    prior = None
    if parts.prior is not None:
        prior = (
            np.asarray(parts.prior.columns, dtype=np.intp),
            np.asarray(parts.prior.prior_.coef_, dtype=float),
            float(parts.prior.prior_.intercept_),
        )
    regressor = parts.regressor
    get_booster = getattr(regressor, "get_booster", None)
    if get_booster is None:
        return None
    try:
        booster = get_booster()
    except Exception:  # noqa: BLE001 - unfitted or not an xgboost model
        return None
    if getattr(regressor, "best_iteration", None) is not None and getattr(
        regressor, "early_stopping_rounds", None
    ):
        return None  # predict() would stop at best_iteration; keep it simple
    missing = getattr(regressor, "missing", np.nan)
    return booster, parts.log, prior, np.nan if missing is None else float(missing)


def _base_score(param: str) -> float:
    text = param.strip()
    if text.startswith("["):
        values = [float(v) for v in text.strip("[]").split(",") if v.strip()]
        if len(values) != 1:
            raise ValueError("multi-target booster")
        return values[0]
    return float(text)


def _trees(booster) -> tuple[list[dict], float] | None:
    model = json.loads(bytes(booster.save_raw("json")))
    learner = model["learner"]
    if learner["objective"]["name"] not in _IDENTITY_OBJECTIVES:
        return None
    gbm = learner["gradient_booster"]
    if gbm.get("name") != "gbtree":
        return None
    params = learner["learner_model_param"]
    if int(params.get("num_target", "1")) != 1 or int(params.get("num_class", "0")):
        return None
    trees = gbm["model"]["trees"]
    if any(any(tree["split_type"]) for tree in trees):
        return None  # categorical splits
    if int(gbm["model"]["gbtree_model_param"].get("num_parallel_tree", "1")) != 1:
        return None
    return trees, _base_score(params["base_score"])


# Sparse inputs up to this many cells are made dense whole for the prior's columns.
_DENSE_PRIOR_CELLS = 1 << 16


class CompiledForest:
    """The trees of several single-output xgboost regressors as flat arrays.

    Parameters
    ----------
    forests : list of (list of tree dicts, base score, log[, prior]) or None
        One entry per target (None: that target predicts NaN); ``prior``, if
        given and not None, is (columns, coefficients, intercept) of a linear
        term added to the target's margin.
    n_features : int
        Width of the feature rows.
    missing : float, default=NaN
        The value that stands for a missing feature (xgboost's ``missing``):
        rows are read with it replaced by NaN.

    Notes
    -----
    Nodes of all trees are concatenated; a leaf points at itself, so that every
    row walks every tree for ``depth`` steps without masks. A split sends a row
    left when ``x < threshold`` in float32 (xgboost's rule) or, for a missing
    value (NaN), to its default side.
    """

    def __init__(self, forests, n_features: int, missing: float = np.nan):
        self.missing = float(missing)
        features, thresholds, default_left, left, right = [], [], [], [], []
        roots, owner, base, log = [], [], [], []
        priors = {}
        offset = 0
        depth = 0
        self.n_targets = len(forests)
        self.n_features = int(n_features)
        for j, entry in enumerate(forests):
            if entry is None:
                base.append(np.nan)
                log.append(False)
                continue
            trees, score, is_log, *rest = entry
            if rest and rest[0] is not None:
                columns, coef, intercept = rest[0]
                priors[j] = (np.asarray(columns, np.intp), np.asarray(coef, float))
                score = score + float(intercept)
            base.append(score)
            log.append(is_log)
            for tree in trees:
                lc = np.asarray(tree["left_children"], dtype=np.intp)
                rc = np.asarray(tree["right_children"], dtype=np.intp)
                n = lc.size
                own = np.arange(n, dtype=np.intp)
                leaf = lc < 0
                lc = np.where(leaf, own, lc) + offset
                rc = np.where(leaf, own, rc) + offset
                features.append(np.asarray(tree["split_indices"], dtype=np.intp))
                thresholds.append(np.asarray(tree["split_conditions"], np.float32))
                default_left.append(np.asarray(tree["default_left"], dtype=bool))
                left.append(lc)
                right.append(rc)
                roots.append(offset)
                owner.append(j)
                depth = max(depth, _depth(tree))
                offset += n
        if offset:
            self._feature = np.concatenate(features)
            self._threshold = np.concatenate(thresholds)
            self._default_left = np.concatenate(default_left)
            # children[2 * node + go_left]: the right child, then the left one.
            self._children = np.stack(
                [np.concatenate(right), np.concatenate(left)], axis=1
            ).ravel()
        else:
            self._feature = self._children = np.zeros(0, np.intp)
            self._threshold = np.zeros(0, np.float32)
            self._default_left = np.zeros(0, bool)
        if offset and self._feature.max(initial=0) >= self.n_features:
            raise ValueError("a tree splits on a feature beyond n_features")
        # Missing values without masks: rows are widened to [x with NaN -> -inf,
        # x with NaN -> +inf], and a node whose missing values go right reads the
        # second half. -inf < threshold sends NaN left, +inf < threshold right;
        # every other value compares as before.
        # Node numbers fit int32 for any forest that fits in memory twice over;
        # int32 gathers are ~1.5x faster than intp ones on one row.
        index = np.int32 if 2 * offset + 2 < np.iinfo(np.int32).max else np.intp
        self._column = (self._feature + self.n_features * (~self._default_left)).astype(
            index
        )
        self._children = self._children.astype(index)
        self._roots = np.asarray(roots, dtype=index)
        # The first level is the same for every row: its columns and thresholds.
        self._root_column = self._column[self._roots]
        self._root_threshold = self._threshold[self._roots]
        self._root_children = 2 * self._roots
        owner = np.asarray(owner, dtype=np.intp)
        self._base = np.asarray(base, dtype=np.float64)
        self.log = np.asarray(log, dtype=bool)
        # Trees are stored target by target: each target's leaves are one run of
        # columns, summed with np.add.reduceat from the run's first tree.
        self._targets_with_trees = np.unique(owner)
        self._first_tree = np.searchsorted(owner, self._targets_with_trees)
        self.depth = depth
        # Linear priors: margins += X[:, columns] @ coefficients, per target.
        columns = sorted({int(c) for cols, _ in priors.values() for c in cols})
        self._prior_columns = np.asarray(columns, dtype=np.intp)
        self._prior_coef = np.zeros((len(columns), self.n_targets))
        where = {c: i for i, c in enumerate(columns)}
        for j, (cols, coef) in priors.items():
            for c, w in zip(cols, coef, strict=True):
                self._prior_coef[where[int(c)], j] += w
        if columns and columns[-1] >= self.n_features:
            raise ValueError("a prior uses a feature beyond n_features")

    def leaf_values(self, X: np.ndarray) -> np.ndarray:
        """The leaf value every row reaches in every tree, (n_rows, n_trees)."""
        column, threshold, children = self._column, self._threshold, self._children
        missing = np.isnan(X)
        wide = np.hstack(
            [np.where(missing, -np.inf, X), np.where(missing, np.inf, X)]
        ).astype(np.float32, copy=False)
        if not self.depth:
            return np.tile(threshold.take(self._roots), (X.shape[0], 1))
        # Gathers from the flat rows: 1-D takes are ~3x faster than 2-D indexing.
        flat = wide.ravel()
        start = (np.arange(X.shape[0], dtype=column.dtype) * wide.shape[1])[:, None]
        go_left = flat.take(start + self._root_column) < self._root_threshold
        node = children.take(self._root_children + go_left)
        for _ in range(self.depth - 1):
            go_left = flat.take(start + column.take(node)) < threshold.take(node)
            node = children.take((node << 1) + go_left)
        return threshold.take(node)

    def margins(self, X) -> np.ndarray:
        """Sum of leaves plus base score per target, before any inverse transform.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_rows, n_features)
            Features as the boosters saw them: for a sparse matrix, entries not
            stored are missing (xgboost's convention), not zero.

        Returns
        -------
        ndarray of shape (n_rows, n_targets)
            On the log1p scale for log targets; NaN for a target without a model.
        """
        prior = None
        if self._prior_columns.size:
            if sparse.issparse(X):
                # Entries not stored are zeros to the prior (as in PriorRegressor);
                # a few rows are cheaper made dense than column-indexed.
                few = X.shape[0] * X.shape[1] <= _DENSE_PRIOR_CELLS
                block = (
                    X.toarray()[:, self._prior_columns]
                    if few
                    else (X.tocsc()[:, self._prior_columns].toarray())
                )
            else:
                block = np.asarray(X)[:, self._prior_columns]
            prior = np.asarray(block, dtype=np.float64) @ self._prior_coef
        X = _as_float32_with_missing(X, self.n_features, self.missing)
        out = np.zeros((X.shape[0], self.n_targets))
        if self._roots.size:
            leaves = self.leaf_values(X).astype(np.float64)
            out[:, self._targets_with_trees] = np.add.reduceat(
                leaves, self._first_tree, axis=1
            )
        out += self._base
        if prior is not None:
            out += prior
        return out

    def predict(self, X) -> np.ndarray:
        """Predict every target, (n_rows, n_targets), in the targets' units.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_rows, n_features)
            As for :meth:`margins`.
        """
        out = self.margins(X)
        out[:, self.log] = np.expm1(out[:, self.log])
        return out


def _depth(tree: dict) -> int:
    left, right = tree["left_children"], tree["right_children"]
    depth, frontier = 0, [0]
    while True:
        children = [c for n in frontier for c in (left[n], right[n]) if c >= 0]
        if not children:
            return depth
        depth += 1
        frontier = children


def _as_float32_with_missing(X, n_features: int, missing: float) -> np.ndarray:
    if sparse.issparse(X):
        X = X.tocsr()
        dense = np.full(X.shape, np.nan, dtype=np.float32)
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        dense[rows, X.indices] = X.data
    else:
        dense = np.asarray(X, dtype=np.float32)
        if dense.ndim != 2:
            raise ValueError(f"expected a 2-D feature matrix, got shape {dense.shape}")
    if dense.shape[1] != n_features:
        raise ValueError(
            f"X has {dense.shape[1]} features, the forest expects {n_features}"
        )
    if not np.isnan(missing):
        dense = np.where(dense == np.float32(missing), np.float32(np.nan), dense)
    return dense


def compile_forest(estimators, n_features: int) -> CompiledForest | None:
    """A :class:`CompiledForest` for per-target estimators, or None if unsupported.

    Parameters
    ----------
    estimators : list
        Fitted per-target estimators (``CostModel.estimators_``): xgboost
        regressors, optionally inside a ``log1p`` TransformedTargetRegressor;
        None for a target without a model.
    n_features : int
        Width of the feature rows.

    Returns
    -------
    CompiledForest or None
        None when an estimator is not supported, or when the boosters do not
        all read the same value as missing.
    """
    forests = []
    missing_values = set()
    for estimator in estimators:
        if estimator is None:
            forests.append(None)
            continue
        parts = _parts(estimator)
        if parts is None:
            return None
        booster, log, prior, missing = parts
        trees = _trees(booster)
        if trees is None:
            return None
        forests.append((trees[0], trees[1], log, prior))
        missing_values.add("nan" if np.isnan(missing) else missing)
    if len(missing_values) > 1:
        return None  # one forest reads one missing value
    missing = missing_values.pop() if missing_values else "nan"
    return CompiledForest(forests, n_features, np.nan if missing == "nan" else missing)
