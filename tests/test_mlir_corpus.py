"""Every file of the shared MLIR corpus reads without a crash.

The corpus (``../shared/mlir-corpus`` next to the repository) holds real compiler
test inputs: split files, generic syntax, unknown dialects, resource blobs and
deliberately invalid programs. Only :class:`MLIRSyntaxError` may come out of the
reader, and only for a few files.
"""

import csv
from pathlib import Path

import pytest

from mlircost_classic.mlir import MLIRSyntaxError, parse

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "mlir-corpus"
FILES = sorted(CORPUS.glob("*/*.mlir")) if CORPUS.is_dir() else []

pytestmark = pytest.mark.skipif(not FILES, reason=f"MLIR corpus not found at {CORPUS}")


def _read(path):
    try:
        return parse(path.read_text(encoding="utf-8"))
    except MLIRSyntaxError:
        return None


def test_every_corpus_file_reads_or_raises_syntax_error():
    failures = {}
    ops = 0
    for path in FILES:
        try:
            module = parse(path.read_text(encoding="utf-8"))
        except MLIRSyntaxError as exc:
            failures[path.name] = str(exc)
            continue
        ops += len(module.ops)
        for op in module.ops:
            assert op.name and op.dialect, (path.name, op)
            assert op.depth <= module.max_depth
    print(f"\n{len(FILES)} files, {ops} ops, {len(failures)} MLIRSyntaxError")
    for name, message in failures.items():
        print(f"  {name}: {message}")
    # The corpus' invalid files are invalid to MLIR's verifier, not structurally.
    assert len(failures) <= len(FILES) // 20, failures
    assert ops > 10_000


def test_corpus_splits_match_the_marker_count():
    for path in FILES:
        module = _read(path)
        if module is None:
            continue
        markers = sum(
            1
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.lstrip().startswith("// -----")
        )
        assert module.num_splits == markers + 1, path.name


def test_corpus_main_dialect_is_seen():
    """The dialect SOURCES.tsv names for a file shows up among its op dialects."""
    sources = CORPUS / "SOURCES.tsv"
    if not sources.is_file():
        pytest.skip("SOURCES.tsv not found")
    with open(sources, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    hits = 0
    for row in rows:
        module = _read(CORPUS / row["local_file"])
        if module is not None:
            hits += row["dialect_guess"] in {op.dialect for op in module.ops}
    # dialect_guess is a heuristic of the corpus builder ('unknown', 'test', ...)
    assert hits >= 0.8 * len(rows), hits
