"""Child-process entry that lowers program specs, one per input line.

torch's export and torch-mlir's import cannot be interrupted inside a Python
process, so the runner lowers specs in a child and kills it when its time is
up. Importing torch and torch-mlir, and the first export, cost several
seconds, more than lowering a typical spec, so a child serves many specs in
turn (see ``_runner._LoweringServer``). Run as::

    python -m mlircost_classic.collect._worker < SPECS.jsonl > RESULTS.jsonl

It first writes ``{"ready": true}`` once its imports are done, then, for every
line ``{"family", "params", "levels"}`` of standard input, one line
``{"texts", "errors", "seconds"}`` as :func:`~._lower.lower_spec` returns
them, and exits at the end of its input. Whatever torch or torch-mlir print
goes to standard error instead, so standard output holds only these lines.
All levels come from one export, so a child that does not finish a spec in
time leaves no result for it; the runner kills it and tries again for the
linalg text alone in a fresh child (see ``_runner._lower_in_child``). No file
is written, so a child killed at any moment leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import sys

__all__ = ["main"]


def _warm_up() -> None:
    """Import what lowering imports, so that no spec's time counts it.

    Without torch or torch-mlir every spec fails on its own, with the message
    :func:`~._lower.lower_spec` records, as it would in a fresh process.
    """
    try:
        import torch  # noqa: F401
        import torch_mlir.fx  # noqa: F401
    except ImportError:
        pass


def main() -> int:
    """Lower every spec read from standard input; print each result as a line."""
    # Keep the real stdout for results; send stray prints to stderr.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    from ._families import ProgramSpec
    from ._lower import lower_spec

    _warm_up()
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        spec = json.loads(line)
        lowered = lower_spec(
            ProgramSpec(spec["family"], spec["params"]), spec["levels"]
        )
        result = {
            "texts": lowered.texts,
            "errors": lowered.errors,
            "seconds": lowered.seconds,
        }
        out.write(json.dumps(result) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
