"""Differential check of the reader and the featurizers over all bundled texts.

Writes, or compares with a file written before, one digest per document of

* the reader's records (``repr`` of :func:`~mlircost_classic.mlir.parse`'s
  result, or the error it raises), and
* its feature row, bit for bit: the shipped models' featurizers on the bundled
  kernels and on the bundled modules at every level (one batch ``transform``
  and, for the first 20 documents, the few-rows path), and an
  ``MLIRFeaturizer`` fitted on the shared corpus (``../shared/mlir-corpus``).

A change meant to keep features identical (a faster reader, a refactor) is
checked by writing the digests before it and comparing after::

    git stash; python benchmarks/feature_digests.py --write /tmp/before.json
    git stash pop; python benchmarks/feature_digests.py --check /tmp/before.json

``--n-jobs 2`` featurizes the bundled sets in parallel chunks (which must give
the same rows); ``--limit 300`` takes a sample (the first texts of each set)
for a quick check. Exits with status 1 when a digest differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from featurize_speed import CORPUS, corpus_texts
from scipy import sparse

import mlircost_classic as mc
from mlircost_classic.datasets._schema import LEVELS
from mlircost_classic.mlir import parse

__all__ = ["main"]

_FEW = 20


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def _row_digests(F) -> list[str]:
    F = F.toarray() if sparse.issparse(F) else np.asarray(F)
    return [_digest(np.ascontiguousarray(r, dtype=np.float64).tobytes()) for r in F]


def _parse_digest(text: str) -> str:
    try:
        return _digest(repr(parse(text)).encode())
    except Exception as exc:  # noqa: BLE001 - the error is part of the record
        return f"error {exc!r}"


def _sets():
    yield "kernels", lambda: mc.load_dataset("kernels").data, ("kernels",)
    for level in LEVELS:
        yield (
            f"modules-{level}",
            lambda level=level: mc.load_dataset("modules", level=level).data,
            ("modules", level),
        )
    if CORPUS.is_dir():
        yield "corpus", corpus_texts, None


def digests(texts, pretrained, n_jobs) -> dict[str, list[str]]:
    """Digests of the reader's records and of the feature rows of ``texts``."""
    if pretrained is None:
        featurizer = mc.MLIRFeaturizer(on_error="ignore")
        rows = featurizer.fit_transform(texts)
    else:
        featurizer = mc.load_pretrained(*pretrained).featurizer_
        featurizer.set_params(n_jobs=n_jobs)
        rows = featurizer.transform(texts)
    few = featurizer.set_params(n_jobs=None).transform(texts[:_FEW])
    return {
        "parse": [_parse_digest(t) for t in texts],
        "features": _row_digests(rows),
        "few": _row_digests(few),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", type=Path, help="write the digests to this file")
    action.add_argument("--check", type=Path, help="compare with digests written")
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first LIMIT texts of each set"
    )
    args = parser.parse_args(argv)
    reference = json.loads(args.check.read_text()) if args.check else None
    result, same = {}, True
    for name, texts, pretrained in _sets():
        start = time.perf_counter()
        texts = list(texts())[: args.limit]
        result[name] = digests(texts, pretrained, args.n_jobs)
        line = f"{name}: {len(texts)} texts, {time.perf_counter() - start:.0f} s"
        if reference is not None:
            for part, values in result[name].items():
                before = reference.get(name, {}).get(part, [])
                differ = [
                    i
                    for i, (a, b) in enumerate(zip(values, before, strict=False))
                    if a != b
                ]
                if differ or len(values) != len(before):
                    same = False
                    line += (
                        f"; {part}: {len(differ)} differ (first {differ[:5]}), "
                        f"{len(values)} vs {len(before)} documents"
                    )
        print(line, flush=True)
    if args.write:
        args.write.write_text(json.dumps(result))
        return 0
    print("identical" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
