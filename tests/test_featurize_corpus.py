"""Featurize every file of the shared MLIR corpus (real compiler test inputs)."""

from pathlib import Path

import numpy as np
import pytest

from mlircost_classic.featurize import MLIRFeaturizer
from mlircost_classic.mlir import MLIRSyntaxError, parse

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "mlir-corpus"
FILES = sorted(CORPUS.glob("*/*.mlir")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not FILES, reason=f"MLIR corpus not found at {CORPUS}")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[-60:])
def test_corpus_file_featurizes(path):
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        module = parse(text)
    except MLIRSyntaxError:
        # A deliberately invalid test input: the featurizer must report the
        # reader's error, nothing else.
        with pytest.raises(MLIRSyntaxError):
            MLIRFeaturizer(on_error="raise").fit_transform([text])
        return
    X = MLIRFeaturizer(on_error="raise").fit_transform([text])
    assert X.shape[0] == 1
    assert np.isfinite(X.data if hasattr(X, "data") else X).all()
    if module.ops:
        assert X.sum() > 0
