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


#: Issue 13: the wheel carries the bundled dataset and models, and stays under this.
WHEEL_LIMIT_BYTES = 100_000_000


def test_the_package_zips_under_the_wheel_limit(tmp_path):
    """What a wheel would hold (the package's files, deflated as wheels are)
    stays under the limit, so that a new batch of shards cannot pass it unseen
    (DATASET.md says where the data goes past it)."""
    import zipfile
    from pathlib import Path

    root = Path(mc.__file__).parent
    files = [
        p
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]
    assert any(p.name.startswith("variants-") for p in files)  # the data is there
    wheel = tmp_path / "package.zip"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for p in files:
            z.write(p, p.relative_to(root.parent))
    assert wheel.stat().st_size < WHEEL_LIMIT_BYTES, (
        f"the package zips to {wheel.stat().st_size / 1e6:.1f} MB"
    )
