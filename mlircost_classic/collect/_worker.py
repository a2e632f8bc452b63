"""Child-process entry that lowers one program spec.

torch's export and torch-mlir's import cannot be interrupted inside a Python
process, so the runner lowers every spec in a fresh child and kills it when
its time is up. Run as::

    python -m mlircost_classic.collect._worker < SPEC.json > RESULT.json

The spec on standard input is ``{"family", "params", "levels"}``; the result,
written to standard output at the very end, is ``{"texts", "errors",
"seconds"}`` as :func:`~._lower.lower_spec` returns them. Whatever torch or
torch-mlir print goes to standard error instead, so the output stays one JSON
document. All levels come from one export, so a child that does not finish in
time leaves no result at all; the runner then tries again for the linalg text
alone (see ``_runner._lower_in_child``). No file is written, so a child killed
at any moment leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import sys

__all__ = ["main"]


def main() -> int:
    """Lower the spec read from standard input; print the result as JSON."""
    spec = json.load(sys.stdin)
    # Keep the real stdout for the result; send stray prints to stderr.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    from ._families import ProgramSpec
    from ._lower import lower_spec

    lowered = lower_spec(ProgramSpec(spec["family"], spec["params"]), spec["levels"])
    result = {
        "texts": lowered.texts,
        "errors": lowered.errors,
        "seconds": lowered.seconds,
    }
    with os.fdopen(result_fd, "w", encoding="utf-8") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
