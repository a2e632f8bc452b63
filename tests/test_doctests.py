"""The Examples sections of the package's docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import mlircost_classic

# Extras a module may need; without them its doctests are skipped, not failed.
OPTIONAL = {"torch", "torch_mlir", "iree", "transformers", "matplotlib", "dask"}
# Modules that import without their extra but whose examples run it.
EXAMPLES_NEED = {
    "mlircost_classic.models._neural": "torch",
    "mlircost_classic.report._plots": "matplotlib",
}

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(
        mlircost_classic.__path__, prefix="mlircost_classic."
    )
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name in EXAMPLES_NEED:
        pytest.importorskip(EXAMPLES_NEED[name])
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in OPTIONAL:
            pytest.skip(f"needs {exc.name}")
        raise
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} failing example(s) in {name}"
