"""Fast prediction for a few rows: every target's xgboost trees in flat arrays.

A compiler pass asks for one module at a time. xgboost's own predict costs
~1.5-2 ms per call and target through the estimators' ``predict``, and
:class:`CostModel` calls it once per target; :class:`CompiledForest` evaluates
all trees of all targets in one set of vectorised numpy steps (one per tree
level) instead, from the boosters' own UBJSON (or JSON) dump, and gives the same
numbers (up to float32 summation order).

Only what :class:`CostModel` fits is covered: ``gbtree`` boosters with a
``reg:squarederror``-style identity link and numerical splits, optionally
boosted from a linear prior (:class:`~mlircost_classic.models.PriorRegressor`)
and inside a :class:`~sklearn.compose.TransformedTargetRegressor` with
``log1p`` / ``expm1``. :func:`compile_forest` returns None for anything else,
and the caller falls back to the estimators' own ``predict``.
"""

from __future__ import annotations

import json
import struct

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


#: UBJSON scalar markers (big-endian, as xgboost writes them); a typed array of
#: one (``[$d#...``) is read as the numpy type of the same format.
_UBJ_SCALARS = {
    ord(marker): struct.Struct(">" + code)
    for marker, code in zip("iUIlLdD", "bBhiqfd", strict=True)
}
_UBJ_ARRAYS = {marker: np.dtype(s.format) for marker, s in _UBJ_SCALARS.items()}
#: The integer markers: a count or a length is one of these.
_UBJ_INTEGERS = {m: s for m, s in _UBJ_SCALARS.items() if m not in b"dD"}
_UBJ_CONSTANTS = {ord("T"): True, ord("F"): False, ord("Z"): None}
# Markers of strings (S, and H for a number as text), containers and counts.
_S, _H, _CHAR = ord("S"), ord("H"), ord("C")
_OBJECT, _OBJECT_END, _ARRAY, _ARRAY_END = b"{}[]"
_TYPE, _COUNT = ord("$"), ord("#")


def _ubjson(data: bytes):
    """Decode a booster's UBJSON (``save_raw("ubj")``), typed arrays as numpy arrays.

    xgboost writes each tree's node vectors as typed arrays: read with one
    ``np.frombuffer`` each, the kernels model's 18 boosters decode ~3x faster
    than their JSON (``save_raw("json")`` and ``json.loads``), which was most of
    the time of loading a shipped model. Only what UBJSON (Draft 12) defines
    is read; anything else raises ValueError (the caller falls back to JSON).
    No UBJSON package on PyPI returns numpy arrays for typed arrays.
    """
    buf = bytes(data)
    scalars, arrays = _UBJ_SCALARS, _UBJ_ARRAYS

    def length(pos):  # an integer with its marker at pos
        number = _UBJ_INTEGERS.get(buf[pos])
        if number is None:
            raise ValueError(f"UBJSON length without an integer marker at {pos}")
        return number.unpack_from(buf, pos + 1)[0], pos + 1 + number.size

    def value(pos, marker):
        number = scalars.get(marker)
        if number is not None:
            return number.unpack_from(buf, pos)[0], pos + number.size
        if marker == _S or marker == _H:
            size, pos = length(pos)
            return buf[pos : pos + size].decode(), pos + size
        if marker == _OBJECT or marker == _ARRAY:
            return container(pos, marker == _OBJECT)
        if marker in _UBJ_CONSTANTS:
            return _UBJ_CONSTANTS[marker], pos
        if marker == _CHAR:
            return chr(buf[pos]), pos + 1
        raise ValueError(f"UBJSON marker {bytes([marker])!r} at {pos - 1}")

    def container(pos, is_object):
        kind = count = None
        if buf[pos] == _TYPE:
            kind, pos = buf[pos + 1], pos + 2
            if buf[pos] != _COUNT:
                raise ValueError(f"UBJSON typed container without a count at {pos}")
        if buf[pos] == _COUNT:
            count, pos = length(pos + 1)
        if kind in arrays and not is_object:
            dtype = arrays[kind]
            end = pos + count * dtype.itemsize
            if end > len(buf):
                raise ValueError("UBJSON typed array past the end of the data")
            flat = np.frombuffer(buf, dtype, count, pos)
            return flat.astype(dtype.newbyteorder("=")), end
        out = {} if is_object else []
        close = _OBJECT_END if is_object else _ARRAY_END
        i = 0
        while count is None or i < count:
            if count is None and buf[pos] == close:
                return out, pos + 1
            if is_object:
                size, pos = length(pos)
                key, pos = buf[pos : pos + size].decode(), pos + size
            if kind is None:
                marker, pos = buf[pos], pos + 1
            else:
                marker = kind
            item, pos = value(pos, marker)
            if is_object:
                out[key] = item
            else:
                out.append(item)
            i += 1
        return out, pos

    try:
        model, end = value(1, buf[0])
    except (IndexError, KeyError, struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"truncated or malformed UBJSON ({exc!r})") from None
    if end != len(buf):
        raise ValueError(f"UBJSON data ends at {end} of {len(buf)} bytes")
    return model


def _model(booster) -> dict:
    """The booster's model as a dict (its UBJSON, else its JSON)."""
    try:
        return _ubjson(booster.save_raw("ubj"))
    except ValueError:
        return json.loads(bytes(booster.save_raw("json")))


def _trees(booster) -> tuple[list[dict], float] | None:
    model = _model(booster)
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
    if any(np.any(tree["split_type"]) for tree in trees):
        return None  # categorical splits
    if int(gbm["model"]["gbtree_model_param"].get("num_parallel_tree", "1")) != 1:
        return None
    return trees, _base_score(params["base_score"])


#: The slots of one level may outnumber the trees' nodes this many times; deeper
#: (lopsided) trees are left to xgboost, as padding them would take more memory
#: than it saves time.
_MAX_PADDING = 4


class _TooDeep(ValueError):
    """Trees too deep and lopsided to pad to complete trees."""


#: Levels of each tree stored in blocks with their leaves
#: (:meth:`CompiledForest._block_bottom`): a block is ``2 << _BLOCK_LEVELS`` slots.
_BLOCK_LEVELS = 2

#: Rows walked together: their widened features stay in the CPU's cache.
_ROWS_PER_WALK = 32

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
    Every tree is padded to a complete binary tree of the forest's depth and
    stored level by level: level ``L`` holds ``2**L`` split slots per tree, all
    trees' slots in one array, so that a row's place in level ``L`` is
    ``g = tree * 2**L + position`` and its child's is ``2 * g + went_left``.
    A walk is then a comparison per level, without reading child pointers:
    at one kernel row, 10,800 trees of depth 6 take ~0.22 ms, against ~0.5 ms
    when the nodes of each tree were stored as xgboost numbers them, with child
    pointers. A leaf above the last level is padded with splits whose
    threshold is NaN (no value is below it, so the walk always goes right) and
    its value is stored where that walk ends. A split sends a row left when
    ``x < threshold`` in float32 (xgboost's rule) or, for a missing value
    (NaN), to its default side.

    A split is stored as one integer, its column and the rank of its threshold
    among its feature's thresholds, and a row is first turned into its values'
    ranks (one ``searchsorted`` of the values present): a level is then one
    gather of splits instead of two (column, threshold), the same comparisons
    in integers. The walk touches half the memory (4 bytes a split instead of
    8): a pass that featurizes a kernel and then predicts it keeps more of
    both in the CPU's cache. The last two levels and the leaves are stored
    tree by tree instead, in blocks of 8 slots (:meth:`_block_bottom`).
    """

    def __init__(self, forests, n_features: int, missing: float = np.nan):
        self.missing = float(missing)
        self.n_targets = len(forests)
        self.n_features = int(n_features)
        trees, owner, base, log = [], [], [], []
        priors = {}
        for j, entry in enumerate(forests):
            if entry is None:
                base.append(np.nan)
                log.append(False)
                continue
            target_trees, score, is_log, *rest = entry
            if rest and rest[0] is not None:
                columns, coef, intercept = rest[0]
                priors[j] = (np.asarray(columns, np.intp), np.asarray(coef, float))
                score = score + float(intercept)
            base.append(score)
            log.append(is_log)
            trees.extend(target_trees)
            owner.extend([j] * len(target_trees))
        self._levels(trees)
        owner = np.asarray(owner, dtype=np.intp)
        self._base = np.asarray(base, dtype=np.float64)
        self.log = np.asarray(log, dtype=bool)
        # Trees are stored target by target: each target's leaves are one run of
        # columns, summed with np.add.reduceat from the run's first tree.
        self._targets_with_trees = np.unique(owner)
        self._first_tree = np.searchsorted(owner, self._targets_with_trees)
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

    def _levels(self, trees: list[dict]) -> None:
        """Lay the trees out level by level (see the class notes)."""
        n_trees = len(trees)
        sizes = [len(tree["left_children"]) for tree in trees]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)

        def joined(key, dtype):
            if not trees:
                return np.zeros(0, dtype)
            return np.concatenate([np.asarray(t[key], dtype=dtype) for t in trees])

        left = joined("left_children", np.intp)
        right = joined("right_children", np.intp)
        feature = joined("split_indices", np.intp)
        value = joined("split_conditions", np.float32)  # thresholds, leaf values
        default_left = joined("default_left", bool)
        if feature.size and feature.max() >= self.n_features:
            raise ValueError("a tree splits on a feature beyond n_features")
        # Rows are widened to [x with NaN -> -inf, x with NaN -> +inf] (see
        # _ranks): a split whose missing values go right reads the second
        # half, where NaN compares as +inf.
        column = (feature + self.n_features * ~default_left).astype(np.int32)
        base = offsets[:-1]
        shift = np.repeat(base, sizes)  # each node's tree's first node
        left[left >= 0] += shift[left >= 0]
        right[right >= 0] += shift[right >= 0]
        columns, thresholds = [], []
        # (node, slot) pairs of one level, walked from the roots down.
        nodes, slots = base, np.arange(n_trees, dtype=np.intp)
        leaves = []  # (level, slots, nodes) of the leaves met on the way
        while nodes.size:
            level = len(columns)
            is_leaf = left.take(nodes) < 0
            leaves.append((level, slots[is_leaf], nodes[is_leaf]))
            inner, inner_slots = nodes[~is_leaf], slots[~is_leaf]
            if not inner.size:
                break
            if (n_trees << level) > _MAX_PADDING * left.size:
                raise _TooDeep(f"padding level {level} takes {n_trees << level} slots")
            level_columns = np.zeros(n_trees << level, dtype=np.int32)
            level_thresholds = np.full(n_trees << level, np.nan, dtype=np.float32)
            level_columns[inner_slots] = column.take(inner)
            level_thresholds[inner_slots] = value.take(inner)
            columns.append(level_columns)
            thresholds.append(level_thresholds)
            nodes = np.concatenate([left.take(inner), right.take(inner)])
            slots = np.concatenate([2 * inner_slots + 1, 2 * inner_slots])
        self.depth = len(columns)
        self._leaves = np.zeros(n_trees << self.depth, dtype=np.float32)
        for level, leaf_slots, leaf_nodes in leaves:
            self._leaves[leaf_slots << (self.depth - level)] = value.take(leaf_nodes)
        self._rank_splits(columns, thresholds)
        self.n_trees = n_trees
        self._block_bottom()

    def _block_bottom(self) -> None:
        """Lay out the last two levels and the leaves again, in blocks of 8 slots.

        A block holds, for one split of level ``depth - 2`` (``_top``), that
        split, its two children's splits and their four leaves, 8 slots (one
        unused) as a heap numbered from 1: the child of slot ``k`` is
        ``2 * k + went_left``, at ``i + (i & 7) + went_left`` for the global
        index ``i = 8 * block + k``. The walk then reads one 32-byte block for
        the last three of its steps instead of three arrays of 1.4-2.8 MB (the
        kernels model's deepest level and leaves), where each step missed the
        CPU's cache: at one kernel row the walk took 0.31 -> 0.26 ms.
        Shallower forests keep what they have (a depth-1 tree: one split and
        two leaves per block; depth 0: a leaf).

        Only the one-row walk reads the blocks. Several rows walk the levels
        and the leaves as laid out before: the rows of one tree read the same
        slots, and the blocks' extra operation a step cost more than the cache
        misses they save (the kernels model, 8 / 32 / 256 rows: 1.94 / 8.8 /
        74 ms level by level, 2.3 / 10.0 / 86 ms in blocks).
        """
        bottom = min(self.depth, _BLOCK_LEVELS)
        top = self.depth - bottom
        packed = self._splits[0].dtype if self._splits else np.dtype(np.int32)
        # Leaves share the blocks' integers: float32 bits beside int32 splits,
        # else float64 (exact; the leaves are summed in float64).
        leaf_type = np.float32 if packed.itemsize == 4 else np.float64
        size = 2 << bottom
        n_blocks = self.n_trees << top
        blocks = _aligned_empty(n_blocks * size, packed).reshape(n_blocks, size)
        blocks[:, 0] = 0
        for step in range(bottom):
            width = 1 << step
            level = self._splits[top + step]
            blocks[:, width : 2 * width] = level.reshape(n_blocks, width)
        blocks[:, size // 2 :] = (
            self._leaves.astype(leaf_type).view(packed).reshape(n_blocks, size // 2)
        )
        self._top, self._bottom, self._block_mask = top, bottom, size - 1
        self._blocks = blocks.reshape(-1)
        self._leaf_type = leaf_type
        # A row's slots in the first level of the walk below the roots (or its
        # blocks' roots when there are no top levels); int32 gathers are ~1.2x
        # faster than intp ones.
        index = np.int32 if self._blocks.size < np.iinfo(np.int32).max else np.intp
        self._first_slots = np.arange(0, 2 * self.n_trees, 2, dtype=index)
        self._block_roots = np.arange(1, self._blocks.size, size, dtype=index)

    def _block_leaves(self) -> np.ndarray:
        """The blocks read as leaf values.

        A view made at each call: a stored one would be pickled as a copy, no
        longer sharing the blocks' memory and cache lines.
        """
        return self._blocks.view(self._leaf_type)

    def _rank_splits(self, columns: list, thresholds: list) -> None:
        """Each level's splits as one integer: column and threshold rank.

        The distinct thresholds of each feature, sorted, are ranked from 1; a
        value's rank is how many of its feature's thresholds it is not below,
        so ``x < threshold`` exactly when ``rank(x) < rank(threshold)``. A
        padding split (NaN threshold) gets rank 0, which no value is below.
        A split is stored as ``column << shift | rank`` and a row's value as
        ``column << shift | rank(x)`` (_ranks): the walk compares the two
        integers, which for one column compares the ranks.
        """
        n, width = self.n_features, 2 * self.n_features
        real = [~np.isnan(t) for t in thresholds]
        # Both halves of a feature's widened columns share its thresholds: a
        # value present then has one rank for both.
        split_keys = [
            ((c[r] % n).astype(np.uint64) << np.uint64(32)) | _order_keys(t[r])
            for c, t, r in zip(columns, thresholds, real, strict=True)
        ]
        keys = np.unique(np.concatenate(split_keys)) if split_keys else split_keys
        self._keys = np.asarray(keys, dtype=np.uint64)
        self._row_keys = np.arange(n, dtype=np.uint64) << np.uint64(32)
        starts = np.searchsorted(self._keys, self._row_keys)
        ranks = []
        for c, r, k in zip(columns, real, split_keys, strict=True):
            rank = np.zeros(c.size, dtype=np.int64)
            rank[r] = np.searchsorted(self._keys, k) - starts[c[r] % n] + 1
            ranks.append(rank)
        most = max((int(r.max()) for r in ranks if r.size), default=0)
        self._shift = max(most.bit_length(), 1)
        packed = (
            np.int32 if (width << self._shift) <= np.iinfo(np.int32).max else np.int64
        )
        self._splits = [
            ((c.astype(np.int64) << self._shift) | rank).astype(packed)
            for c, rank in zip(columns, ranks, strict=True)
        ]
        # rank(x) = found - start of its feature; the column's bits added
        self._offsets = (np.arange(width, dtype=np.int64) << self._shift) - np.tile(
            starts, 2
        )
        missing = np.repeat(np.float32([-np.inf, np.inf]), n)
        found = np.searchsorted(
            self._keys, np.tile(self._row_keys, 2) | _order_keys(missing), "right"
        )
        self._missing_ranks = (found + self._offsets).astype(packed)

    def _ranks(self, X: np.ndarray) -> np.ndarray:
        """The widened rows of ``X`` (float32, NaN where missing), ranked.

        Each value as ``column << shift | rank(x)`` (see _rank_splits).

        A missing value is -inf in the first half of a widened row and +inf in
        the second: the same ranks in every row, found once (_missing_ranks).
        Only the values present, a sixth of a kernel row, are looked up.
        """
        ranks = np.tile(self._missing_ranks, (X.shape[0], 1))
        rows, cols = np.nonzero(~np.isnan(X))
        keys = self._row_keys[cols] | _order_keys(X[rows, cols])
        found = np.searchsorted(self._keys, keys, "right")
        ranks[rows, cols] = found + self._offsets[cols]
        cols += self.n_features
        ranks[rows, cols] = found + self._offsets[cols]
        return ranks

    def _leaf_values(self, X: np.ndarray) -> np.ndarray:
        """The leaf value every row of ``X`` (float32) reaches in every tree."""
        if not self.depth:
            return np.tile(self._leaves, (X.shape[0], 1))
        ranks = self._ranks(X)
        if X.shape[0] == 1:
            return self._walk_one(ranks[0])[None, :]
        return self._walk(ranks)

    def _sum_leaves(
        self, X, out: np.ndarray, start: int, stop: int, zeros_missing: bool = False
    ) -> None:
        """Each target's sum of leaves for rows ``start:stop`` of ``X``, into ``out``."""
        dense = _float32_rows(X, start, stop, self.missing, zeros_missing)
        leaves = self._leaf_values(dense).astype(np.float64)
        out[start:stop, self._targets_with_trees] = np.add.reduceat(
            leaves, self._first_tree, axis=1
        )

    def _walk_one(self, ranks: np.ndarray) -> np.ndarray:
        """Leaves of one row's ranks: 1-D gathers, ~3x faster than 2-D ones."""
        shift = self._shift
        if self._top:
            split = self._splits[0]
            slot = self._first_slots + (ranks.take(split >> shift) < split)
            for level in range(1, self._top):
                split = self._splits[level].take(slot)
                slot <<= 1
                slot += ranks.take(split >> shift) < split
            slot <<= self._bottom + 1  # the block's first slot, its root's
            slot += 1
        else:
            slot = self._block_roots.copy()
        blocks, mask = self._blocks, self._block_mask
        for _ in range(self._bottom):
            split = blocks.take(slot)
            slot += slot & mask
            slot += ranks.take(split >> shift) < split
        return self._block_leaves().take(slot)

    def _walk(self, ranks: np.ndarray) -> np.ndarray:
        """Leaves of several rows' ranks, (n_rows, n_trees)."""
        shift = self._shift
        flat = ranks.ravel()
        start = (np.arange(ranks.shape[0], dtype=np.int32) * ranks.shape[1])[:, None]
        split = self._splits[0]
        slot = self._first_slots + (flat.take(start + (split >> shift)) < split)
        for level in range(1, self.depth):
            split = self._splits[level].take(slot)
            went_left = flat.take(start + (split >> shift)) < split
            slot <<= 1
            slot += went_left
        return self._leaves.take(slot)

    def margins(self, X, *, zeros_missing: bool = False) -> np.ndarray:
        """Sum of leaves plus base score per target, before any inverse transform.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_rows, n_features)
            Features as the boosters saw them: for a sparse matrix, entries not
            stored are missing (xgboost's convention), not zero.
        zeros_missing : bool, default=False
            ``X`` is an array holding a sparse matrix's values (its
            ``toarray()``): its zeros are the entries the matrix would not
            store, missing to the trees (and zeros to a prior), so that the
            margins are the matrix's. A few rows featurized straight into an
            array skip making the matrix.

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
        X = _checked(X, self.n_features)
        out = np.zeros((X.shape[0], self.n_targets))
        if self.n_trees:
            # Rows a few at a time: their widened features stay in the CPU's
            # cache, and a large batch never holds all its leaves at once.
            n = X.shape[0]
            for start in range(0, n, _ROWS_PER_WALK):
                stop = min(start + _ROWS_PER_WALK, n)
                self._sum_leaves(X, out, start, stop, zeros_missing)
        out += self._base
        if prior is not None:
            out += prior
        return out

    def predict(self, X, *, zeros_missing: bool = False) -> np.ndarray:
        """Predict every target, (n_rows, n_targets), in the targets' units.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_rows, n_features)
            As for :meth:`margins`.
        zeros_missing : bool, default=False
            As for :meth:`margins`.
        """
        out = self.margins(X, zeros_missing=zeros_missing)
        out[:, self.log] = np.expm1(out[:, self.log])
        return out


def _aligned_empty(n: int, dtype) -> np.ndarray:
    """An empty 1-D array of ``n`` items whose data starts on a 64-byte boundary.

    A block of the walk (:meth:`CompiledForest._block_bottom`) is then never
    split between two cache lines.
    """
    dtype = np.dtype(dtype)
    raw = np.empty(n * dtype.itemsize + 64, dtype=np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start : start + n * dtype.itemsize].view(dtype)


def _order_keys(values: np.ndarray) -> np.ndarray:
    """uint64 keys of float32 values (no NaN) in the order of ``<``.

    The sign-magnitude bits made monotonic: negative values' bits all flipped,
    positive values' sign bit only; -0.0 is read as 0.0, which ``<`` does not
    tell apart from it.
    """
    bits = (np.asarray(values, dtype=np.float32) + np.float32(0)).view(np.uint32)
    flip = (bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF) | np.uint32(0x80000000)
    return (bits ^ flip).astype(np.uint64)


def _checked(X, n_features: int):
    """``X`` as a CSR matrix or an array, refused unless 2-D and ``n_features`` wide."""
    X = X.tocsr() if sparse.issparse(X) else np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D feature matrix, got shape {X.shape}")
    if X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[1]} features, the forest expects {n_features}"
        )
    return X


def _float32_rows(
    X, start: int, stop: int, missing: float, zeros_missing: bool = False
) -> np.ndarray:
    """Rows ``start:stop`` of a checked ``X`` as float32, NaN where missing.

    Entries a sparse matrix does not store are missing, as xgboost reads them,
    and so are an array's zeros with ``zeros_missing`` (see
    :meth:`CompiledForest.margins`).
    """
    if sparse.issparse(X):
        first, last = X.indptr[start], X.indptr[stop]
        dense = np.full((stop - start, X.shape[1]), np.nan, dtype=np.float32)
        rows = np.repeat(np.arange(stop - start), np.diff(X.indptr[start : stop + 1]))
        dense[rows, X.indices[first:last]] = X.data[first:last]
    else:
        dense = np.asarray(X[start:stop], dtype=np.float32)
        if zeros_missing:
            dense = np.where(X[start:stop] == 0, np.float32(np.nan), dense)
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
        None when an estimator is not supported, when the boosters do not
        all read the same value as missing, or when their trees are too deep
        and lopsided to pad (:data:`_MAX_PADDING`).
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
    try:
        return CompiledForest(
            forests, n_features, np.nan if missing == "nan" else missing
        )
    except _TooDeep:
        return None
