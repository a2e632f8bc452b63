"""The package's import surface: lazy re-exports, light subpackages, the version."""

import subprocess
import sys

import pytest

import mlircost_classic as mc

HEAVY = ("xgboost", "sklearn", "scipy")


@pytest.mark.parametrize("module", ["mlircost_classic", "mlircost_classic.mlir"])
def test_reading_mlir_imports_no_machine_learning_library(module):
    code = (
        f"import sys, {module}; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_public_names_resolve_on_first_use():
    from mlircost_classic.models import CostModel

    assert mc.CostModel is CostModel
    assert set(mc.__all__) <= set(dir(mc))
    for name in mc.__all__:
        assert getattr(mc, name) is not None
    # A subpackage is an attribute before anything imported it.
    code = "import mlircost_classic as mc; print(mc.models.DEFAULT_MODELS[0])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "('modules', 'linalg')"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mc.nope  # noqa: B018


def test_version_has_its_own_module():
    from mlircost_classic._version import __version__

    assert mc.__version__ == __version__
