"""The template every MLIR featurizer follows.

:class:`BaseMLIRFeaturizer` validates the documents, reads each one once with the
MLIR reader, applies the ``on_error`` policy and hands the parsed modules to the
two methods a family implements: ``_fit_modules`` (learn state) and ``_extract``
(one row per module). Rows of documents that could not be read are zeros, and a
``parse_error`` column marks them when errors are not raised.
"""

from __future__ import annotations

import contextlib
import gc
import os
import warnings
from numbers import Integral

import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from ..mlir import ParsedModule, parse, read_source

__all__ = ["BaseMLIRFeaturizer", "MLIRReadWarning", "PARALLEL_CHUNK"]

#: With ``n_jobs``, ``transform`` of more documents than this runs in joblib
#: workers, this many documents per task.
PARALLEL_CHUNK = 256


class MLIRReadWarning(UserWarning):
    """A document could not be read; its row is zeros and ``parse_error`` is 1."""


def _read_document(doc, input: str) -> ParsedModule:
    if isinstance(doc, ParsedModule):
        return doc
    if not isinstance(doc, (str, bytes, os.PathLike)):
        raise TypeError(
            "each document must be MLIR text (str or bytes), a file name "
            f"(with input='filename') or a ParsedModule, got {type(doc).__name__}"
        )
    return parse(read_source(doc, input=input))


def _read_or_error(doc, input: str):
    try:
        return _read_document(doc, input), None
    except Exception as exc:  # noqa: BLE001 - the on_error policy decides
        return None, exc


@contextlib.contextmanager
def _collector_paused():
    """The cyclic garbage collector off while a batch of documents is read and featurized.

    Reading makes no reference cycles, and its records all live until the batch
    is featurized; a full collection in between frees nothing but walks the
    whole heap (in a process holding the bundled kernels, ~0.3 s, ~40% of
    reading 2,000 kernels). Featurizing allocates too, and with the collector
    back on, its young-generation collections walked the batch's fresh records:
    ~0.3 ms of a median module's 1.5 ms ``transform``. Collections resume, and
    catch up, afterwards.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _transform_chunk(featurizer, docs: list):
    """Rows of ``docs`` and their reading errors, ``(index in docs, exception)``."""
    with _collector_paused():
        results = [_read_or_error(doc, featurizer.input) for doc in docs]
        block = featurizer._transform_read([module for module, _ in results])
    return block, [(i, exc) for i, (_, exc) in enumerate(results) if exc is not None]


def _check_documents(X) -> list:
    """``X`` as a list of documents; a bare string or a non-iterable is refused.

    A one-column 2-D container (what ``ColumnTransformer`` passes for a list of
    one column) is read as that column.
    """
    if isinstance(X, (str, bytes)):
        raise ValueError(
            "Iterable over raw text documents expected, string object received. "
            "Pass a list of MLIR texts, e.g. [text]."
        )
    if isinstance(X, ParsedModule):
        raise ValueError(
            "Iterable over documents expected, a single ParsedModule received."
        )
    ndim = getattr(X, "ndim", 1)
    if ndim == 2:
        if X.shape[1] != 1:
            raise ValueError(
                "expected one column of MLIR documents, got an array of shape "
                f"{X.shape}"
            )
        X = X.iloc[:, 0] if hasattr(X, "iloc") else np.asarray(X)[:, 0]
    elif ndim != 1:
        raise ValueError(f"expected a 1-D iterable of MLIR documents, got ndim={ndim}")
    try:
        return list(X)
    except TypeError:
        raise TypeError(
            f"expected an iterable of MLIR documents, got {type(X).__name__}"
        ) from None


class BaseMLIRFeaturizer(TransformerMixin, BaseEstimator):
    """Base class of the MLIR featurizers (template method).

    Subclasses implement ``_fit_modules(modules)``, ``_extract(modules)``
    (a 2-D array or sparse matrix with one row per module) and
    ``_feature_names()``; everything else (validation, reading, errors, the
    ``parse_error`` column, ``fit_transform`` reading once) happens here.

    Parameters
    ----------
    input : {"content", "filename"}, default="content"
        Whether documents are MLIR texts or paths of files holding them.
    on_error : {"raise", "warn", "ignore"}, default="raise"
        What to do with a document that cannot be read. ``"raise"`` re-raises
        the reader's error (:class:`~mlircost_classic.mlir.MLIRSyntaxError`,
        :class:`OSError`, ...); ``"warn"`` and ``"ignore"`` give it a row of
        zeros and add a ``parse_error`` column that is 1 on such rows,
        ``"warn"`` also emitting an :class:`MLIRReadWarning`.
    n_jobs : int, default=None
        Documents read in parallel with joblib (``None`` means 1); ``transform``
        of more than :data:`PARALLEL_CHUNK` documents reads and featurizes them
        in chunks of that many per joblib task.
    """

    _parameter_constraints: dict = {
        "input": [StrOptions({"content", "filename"})],
        "on_error": [StrOptions({"raise", "warn", "ignore"})],
        "n_jobs": [Integral, None],
    }
    _sparse = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags

    # -- hooks for subclasses -------------------------------------------------
    def _fit_modules(self, modules: list[ParsedModule]) -> None:
        """Learn state from the parsed training modules (default: nothing)."""

    def _extract(self, modules: list[ParsedModule]):
        raise NotImplementedError

    def _feature_names(self) -> list[str]:
        raise NotImplementedError

    def _extract_dense(self, modules: list[ParsedModule]) -> np.ndarray:
        """``_extract(modules)`` as a dense array (entries a sparse one leaves out: 0)."""
        block = self._extract(modules)
        return block.toarray() if sparse.issparse(block) else np.asarray(block)

    # -- template -------------------------------------------------------------
    def _read(self, X) -> list[ParsedModule | None]:
        results = self._read_results(_check_documents(X))
        self._on_errors((i, exc) for i, (_, exc) in enumerate(results))
        return [module for module, _ in results]

    def _read_results(self, docs: list) -> list:
        """``(module or None, exception or None)`` per document, in order."""
        if self.n_jobs is None or self.n_jobs == 1 or len(docs) < 2:
            with _collector_paused():
                return [_read_or_error(doc, self.input) for doc in docs]
        return Parallel(n_jobs=self.n_jobs)(
            delayed(_read_or_error)(doc, self.input) for doc in docs
        )

    def _on_errors(self, errors) -> None:
        """Apply the ``on_error`` policy to ``(document index, exception or None)``."""
        for i, exc in errors:
            if exc is None:
                continue
            if self.on_error == "raise":
                if hasattr(exc, "add_note"):
                    exc.add_note(f"while reading document {i}")
                raise exc
            if self.on_error == "warn":
                warnings.warn(
                    f"document {i} could not be read ({type(exc).__name__}: "
                    f"{exc}); its row is zeros and parse_error is 1",
                    MLIRReadWarning,
                    stacklevel=4,
                )

    def _transform_chunks(self, docs: list):
        """``transform`` of many documents, chunk by chunk in joblib workers.

        Each worker reads and featurizes its chunk and sends back only the rows
        and the reading errors: parsed modules would cost more to send than to
        make. Rows are the same as in one pass (every part computes rows
        independently of each other).
        """
        chunks = range(0, len(docs), PARALLEL_CHUNK)
        done = Parallel(n_jobs=self.n_jobs)(
            delayed(_transform_chunk)(self, docs[i : i + PARALLEL_CHUNK])
            for i in chunks
        )
        self._on_errors(
            (start + i, exc)
            for start, (_, errors) in zip(chunks, done, strict=True)
            for i, exc in errors
        )
        blocks = [block for block, _ in done]
        if sparse.issparse(blocks[0]):
            return sparse.vstack(blocks, format="csr")
        return np.vstack(blocks)

    def _fit_read(self, modules: list[ParsedModule | None]) -> None:
        good = [m for m in modules if m is not None]
        self._check_readable(len(modules), len(good))
        self.parse_error_column_ = self.on_error != "raise"
        self._fit_modules(good)

    @staticmethod
    def _check_readable(n_documents: int, n_read: int) -> None:
        """Refuse to fit on no documents, or on none that could be read."""
        if not n_documents:
            raise ValueError("fit needs at least one MLIR document, got none")
        if not n_read:
            raise ValueError(
                f"none of the {n_documents} documents could be read; nothing to fit on"
            )

    def _transform_read(self, modules: list[ParsedModule | None]):
        ok = [i for i, m in enumerate(modules) if m is not None]
        if ok:
            block = self._extract([modules[i] for i in ok])
        else:
            width = len(self._feature_names())
            block = (
                sparse.csr_matrix((0, width)) if self._sparse else np.zeros((0, width))
            )
        return self._full_rows(block, ok, len(modules))

    def _full_rows(self, block, ok: list[int], n: int):
        """Rows of the documents ``ok`` among ``n``, zeros for the unread ones.

        Ends with the ``parse_error`` column when errors are not raised.
        """
        if len(ok) < n:
            if sparse.issparse(block):
                select = sparse.csr_matrix(
                    (np.ones(len(ok), dtype=block.dtype), (ok, np.arange(len(ok)))),
                    shape=(n, len(ok)),
                )
                block = (select @ block).tocsr()
            else:
                full = np.zeros((n, block.shape[1]), dtype=block.dtype)
                full[ok] = block
                block = full
        if not self.parse_error_column_:
            return block
        flag = np.ones((n, 1), dtype=block.dtype)
        flag[ok] = 0
        if sparse.issparse(block):
            return sparse.hstack([block, sparse.csr_matrix(flag)], format="csr")
        return np.hstack([block, flag])

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn what the featurizer needs from the documents.

        Parameters
        ----------
        X : iterable of str, bytes, path or ParsedModule
            MLIR documents (texts, or file names with ``input="filename"``).
        y : None
            Ignored.

        Returns
        -------
        self
        """
        self._fit_read(self._read(X))
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit and transform, reading every document once.

        Parameters
        ----------
        X : iterable of str, bytes, path or ParsedModule
            MLIR documents.
        y : None
            Ignored.

        Returns
        -------
        ndarray or sparse matrix of shape (n_documents, n_features)
        """
        return self._fit_transform_documents(_check_documents(X))

    def _fit_transform_documents(self, docs: list):
        """``fit_transform`` of a list of documents (parameters validated)."""
        with _collector_paused():
            modules = self._read(docs)
            self._fit_read(modules)
            return self._transform_read(modules)

    def transform(self, X):
        """Featurize documents.

        Parameters
        ----------
        X : iterable of str, bytes, path or ParsedModule
            MLIR documents.

        Returns
        -------
        ndarray or sparse matrix of shape (n_documents, n_features)
        """
        check_is_fitted(self, "parse_error_column_")
        docs = _check_documents(X)
        if self.n_jobs not in (None, 1) and len(docs) > PARALLEL_CHUNK:
            return self._transform_chunks(docs)
        with _collector_paused():
            return self._transform_read(self._read(docs))

    def _dense_rows(self, X) -> np.ndarray:
        """``transform(X).toarray()`` in float64, without making a sparse matrix.

        For a few documents (a model's one-query path): no sparse matrix is
        built, converted and read back. The rows are those of ``transform``
        bit for bit; where it returns a sparse matrix, a 0.0 stands wherever
        the matrix stores no entry (a -0.0 included, which it does not store).
        """
        check_is_fitted(self, "parse_error_column_")
        with _collector_paused():
            modules = self._read(_check_documents(X))
            ok = [i for i, m in enumerate(modules) if m is not None]
            if ok:
                block = self._extract_dense([modules[i] for i in ok])
            else:
                block = np.zeros((0, len(self._feature_names())))
            rows = np.asarray(
                self._full_rows(block, ok, len(modules)), dtype=np.float64
            )
        if self._sparse:
            rows[rows == 0] = 0.0
        return rows

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns, in order.

        Parameters
        ----------
        input_features : None
            Ignored; documents have no input feature names.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self, "parse_error_column_")
        names = list(self._feature_names())
        if self.parse_error_column_:
            names.append("parse_error")
        return np.asarray(names, dtype=object)
