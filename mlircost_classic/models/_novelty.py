"""How far documents are from a cost model's training data.

A regressor fitted on some programs says little about a program unlike all of
them: trees cannot predict beyond the costs they saw, and conformal intervals
are calibrated on programs like the training ones. :func:`feature_ranges`
records, at fit, the range of a few size features over the training documents;
:func:`novelty_reasons` lists, per document, what lies outside them and which
ops the model has no column for.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from ..featurize import MLIRFeaturizer, OpcodeCounter

__all__ = ["NOVELTY_FEATURES", "feature_ranges", "known_ops", "novelty_reasons"]

#: Features of :class:`~mlircost_classic.featurize.ShapeFeatures` whose training
#: range :meth:`~mlircost_classic.models.CostModel.novelty` checks: program
#: size, tensor shapes and the roofline's work.
NOVELTY_FEATURES = (
    "ops",
    "rank max",
    "largest tensor elements",
    "elements total",
    "FLOPs total",
    "bytes moved total",
)


def _columns(names) -> dict[str, int]:
    """Column of each novelty feature in ``names`` (bare or ``shapes__`` prefixed)."""
    index = {str(n): i for i, n in enumerate(names)}
    found = {}
    for feature in NOVELTY_FEATURES:
        for name in (feature, f"shapes__{feature}"):
            if name in index:
                found[feature] = index[name]
                break
    return found


def _feature_names(featurizer) -> list[str]:
    try:
        return [str(n) for n in featurizer.get_feature_names_out()]
    except (AttributeError, NotImplementedError, ValueError, TypeError):
        return []  # a featurizer without column names has no ranges to check


def _column(F, j: int) -> np.ndarray:
    column = F[:, j]
    if sparse.issparse(column):
        column = column.toarray()
    return np.asarray(column, dtype=float).ravel()


def feature_ranges(F, featurizer) -> dict[str, list[float]]:
    """Minimum and maximum of each :data:`NOVELTY_FEATURES` column of ``F``.

    Parameters
    ----------
    F : array or sparse matrix of shape (n_samples, n_features)
        The featurized training documents.
    featurizer : transformer
        The fitted featurizer that made ``F`` (for its column names).

    Returns
    -------
    dict of str -> [float, float]
        Feature -> ``[min, max]`` over the finite values; features the
        featurizer lacks are left out.
    """
    ranges = {}
    for feature, j in _columns(_feature_names(featurizer)).items():
        values = _column(F, j)
        values = values[np.isfinite(values)]
        if values.size:
            ranges[feature] = [float(values.min()), float(values.max())]
    return ranges


def known_ops(featurizer) -> frozenset[str] | None:
    """The op names the featurizer has a column for; None without an op counter.

    With :class:`~mlircost_classic.featurize.OpcodeCounter`'s default
    ``min_count=1`` these are exactly the ops of the training documents.
    """
    counter = featurizer
    if isinstance(featurizer, MLIRFeaturizer):
        parts = dict(getattr(featurizer, "transformers_", ()))
        counter = parts.get("opcodes")
    if not isinstance(counter, OpcodeCounter):
        return None
    return frozenset(counter.vocabulary_)


def _number(value: float) -> str:
    return f"{value:.4g}"


def novelty_reasons(modules, F, featurizer, ranges) -> list[list[str]]:
    """Why each document is far from the training data (empty: it is not).

    Parameters
    ----------
    modules : list of ParsedModule
        The documents, read.
    F : array or sparse matrix of shape (len(modules), n_features)
        Their features, from ``featurizer``.
    featurizer : transformer
        The model's fitted featurizer.
    ranges : dict of str -> [float, float]
        What :func:`feature_ranges` returned at fit.

    Returns
    -------
    list of list of str
        One list of reasons per document.
    """
    ops = known_ops(featurizer)
    columns = _columns(_feature_names(featurizer))
    values = {f: _column(F, columns[f]) for f in ranges if f in columns}
    reasons = []
    for row, module in enumerate(modules):
        found = []
        if ops is not None:
            unseen = sorted({op.name for op in module.ops} - ops)
            if unseen:
                found.append(f"ops never seen in training: {', '.join(unseen)}")
        for feature, (low, high) in ranges.items():
            if feature not in values:
                continue
            value = values[feature][row]
            if value < low or value > high:
                side = "below" if value < low else "above"
                found.append(
                    f"{feature} = {_number(value)} {side} the training range "
                    f"[{_number(low)}, {_number(high)}]"
                )
        reasons.append(found)
    return reasons
