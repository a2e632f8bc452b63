"""Shape, loop and cost features read from types and the op catalog."""

from __future__ import annotations

import os

import numpy as np

from ..mlir._ir import ParsedModule
from ._analysis import (
    LOG_FEATURES,
    ROOT_DIM_FEATURES,
    ROOT_DIM_LOG_FEATURES,
    ROOT_LOOP_FEATURES,
    ROOT_LOOP_LOG_FEATURES,
    SHAPE_FEATURES,
    analyze,
)
from ._base import BaseMLIRFeaturizer
from ._catalog import load_catalog

__all__ = ["ShapeFeatures"]

_LOG_INDEX = [SHAPE_FEATURES.index(name) for name in LOG_FEATURES]
# with root_loops: the log-scaled columns of the longer row
_ROOT_LOG_INDEX = _LOG_INDEX + [
    len(SHAPE_FEATURES) + ROOT_LOOP_FEATURES.index(name)
    for name in ROOT_LOOP_LOG_FEATURES
]
# with root_dims too: the log-scaled columns of the longest row
_DIMS_LOG_INDEX = _ROOT_LOG_INDEX + [
    len(SHAPE_FEATURES) + len(ROOT_LOOP_FEATURES) + ROOT_DIM_FEATURES.index(name)
    for name in ROOT_DIM_LOG_FEATURES
]


class ShapeFeatures(BaseMLIRFeaturizer):
    """A fixed, documented list of numeric features per module.

    Structure (ops, functions, regions, blocks, region depth, loops, loop nest
    depth and constant trip counts of ``affine.for`` / ``scf.for`` / ...),
    values (ranks, element counts, bytes per element type, dynamic dimensions,
    the largest tensor), op counts per catalog family, and estimated FLOPs and
    bytes moved per family from the catalog's rules (matmuls, convolutions with
    their strides / dilations / groups, pooling, elementwise ops, reductions,
    ``linalg.generic`` over its iteration domain, data movement) with the
    arithmetic intensity, and the op with the most FLOPs, the likely root of a
    kernel (its FLOPs per output element, payload size, loops and reduction
    loops, output shape and innermost dimension, element widths). The column
    list is
    :data:`~mlircost_classic.featurize.SHAPE_FEATURES`, followed by
    ``log1p <name>`` for the heavy-tailed ones
    (:data:`~mlircost_classic.featurize.LOG_FEATURES`) when ``log_scale``.
    With ``root_loops``, the heaviest op's loop extents one by one
    (:data:`~mlircost_classic.featurize.ROOT_LOOP_FEATURES`) follow
    :data:`~mlircost_classic.featurize.SHAPE_FEATURES`, and the log-scaled
    columns of its extents follow the others.
    Output is dense, so ``set_output(transform="pandas")`` works.

    Parameters
    ----------
    catalog : path or list of paths, default=None
        Extra catalog TOML files or folders, read after the shipped ones (see
        :func:`~mlircost_classic.featurize.load_catalog`).
    log_scale : bool, default=True
        Append ``log1p`` columns of the heavy-tailed features.
    root_loops : bool, default=False
        Add the heaviest op's loop extents (M, N, K, batch and their powers of
        two): what a GPU compiler picks a kernel's tiles from. The shipped
        kernels model uses them; on the bundled kernels, by family
        (GroupKFold, 5 folds), they raise the Spearman of sm_80 and sm_90
        registers by about 0.018, of AMD VGPRs and SGPRs by about 0.01.
    root_dims : bool, default=False
        With ``root_loops``, add the heaviest op's loops as a contraction's
        M, N and K (:data:`~mlircost_classic.featurize.ROOT_DIM_FEATURES`:
        what IREE picks an MMA, subgroup-reduction or per-thread strategy
        from) after them, and take a dispatch without FLOPs (a copy, a
        transpose) by its last ``linalg`` op or its stored value's loops, and
        ``linalg.softmax`` as the reduction IREE decomposes it into.
    input : {"content", "filename"}, default="content"
        Whether documents are MLIR texts or file names.
    on_error : {"raise", "warn", "ignore"}, default="raise"
        What to do with unreadable documents, see :class:`BaseMLIRFeaturizer`.
    n_jobs : int, default=None
        Documents read in parallel with joblib.

    Attributes
    ----------
    catalog_ : Catalog
        The catalog used.
    parse_error_column_ : bool
        Whether the output ends with a ``parse_error`` column.

    Examples
    --------
    >>> from mlircost_classic.featurize import ShapeFeatures
    >>> text = '''func.func @mm(%a: tensor<8x4xf32>, %b: tensor<4x16xf32>,
    ...                        %c: tensor<8x16xf32>) -> tensor<8x16xf32> {
    ...   %0 = linalg.matmul ins(%a, %b : tensor<8x4xf32>, tensor<4x16xf32>)
    ...                      outs(%c : tensor<8x16xf32>) -> tensor<8x16xf32>
    ...   return %0 : tensor<8x16xf32>
    ... }'''
    >>> shapes = ShapeFeatures().fit([text])
    >>> names = list(shapes.get_feature_names_out())
    >>> float(shapes.transform([text])[0, names.index("matmul FLOPs")])  # 2*8*16*4
    1024.0
    """

    _parameter_constraints: dict = {
        **BaseMLIRFeaturizer._parameter_constraints,
        "catalog": [str, os.PathLike, list, tuple, None],
        "log_scale": ["boolean"],
        "root_loops": ["boolean"],
        "root_dims": ["boolean"],
    }

    def __init__(
        self,
        *,
        catalog=None,
        log_scale=True,
        root_loops=False,
        root_dims=False,
        input="content",
        on_error="raise",
        n_jobs=None,
    ):
        self.catalog = catalog
        self.log_scale = log_scale
        self.root_loops = root_loops
        self.root_dims = root_dims
        self.input = input
        self.on_error = on_error
        self.n_jobs = n_jobs

    def _fit_modules(self, modules: list[ParsedModule]) -> None:
        if self.root_dims and not self.root_loops:
            raise ValueError("root_dims=True needs root_loops=True")
        self.catalog_ = load_catalog(self.catalog)

    def _extract(self, modules: list[ParsedModule]) -> np.ndarray:
        root, dims = self.root_loops, self.root_loops and self.root_dims
        width = (
            len(SHAPE_FEATURES)
            + (len(ROOT_LOOP_FEATURES) if root else 0)
            + (len(ROOT_DIM_FEATURES) if dims else 0)
        )
        rows = np.array(
            [analyze(m, self.catalog_, root, dims) for m in modules], dtype=float
        ).reshape(len(modules), width)
        if self.log_scale:
            logged = (
                _DIMS_LOG_INDEX if dims else _ROOT_LOG_INDEX if root else _LOG_INDEX
            )
            rows = np.hstack([rows, np.log1p(rows[:, logged])])
        return rows

    def _feature_names(self) -> list[str]:
        names = list(SHAPE_FEATURES)
        logged = list(LOG_FEATURES)
        if self.root_loops:
            names += ROOT_LOOP_FEATURES
            logged += ROOT_LOOP_LOG_FEATURES
            if self.root_dims:
                names += ROOT_DIM_FEATURES
                logged += ROOT_DIM_LOG_FEATURES
        if self.log_scale:
            names += [f"log1p {name}" for name in logged]
        return names
