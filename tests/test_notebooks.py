"""The notebooks in ``notebooks/`` run from top to bottom and are saved executed.

Each notebook is executed with nbclient in a kernel that runs this interpreter
(a kernel spec written to a temporary folder, so that no other ``python3``
kernel installed on the machine is picked up), from the ``notebooks/`` folder,
and fails on the first cell that raises. The saved files must carry the
outputs of one complete run from top to bottom: a notebook saved unexecuted,
half-run or with an error is stale documentation.
"""

import json
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds
MAX_BYTES = 1_000_000  # saved outputs stay small
KERNEL = "mlircost-tests"


def _code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    assert names == [
        "01_quickstart.ipynb",
        "02_feature_importance.ipynb",
        "03_benchmark.ipynb",
        "04_label_your_mlir.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_saved_with_outputs(path):
    nb = nbformat.read(path, as_version=4)
    cells = _code_cells(nb)
    assert cells, f"{path.name} has no code cell"
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name} was not saved after one run from top to bottom "
        f"(execution counts {counts}); re-run it and save it: "
        f"`cd notebooks && jupyter execute --inplace {path.name}`"
    )
    for i, cell in enumerate(cells, 1):
        assert cell.outputs, f"{path.name}: code cell {i} was saved without output"
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"{path.name}: code cell {i} was saved with an error"
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is too large"


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory):
    root = tmp_path_factory.mktemp("kernels")
    (root / KERNEL).mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (mlircost tests)",
        "language": "python",
    }
    (root / KERNEL / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(root)])


def _execute(nb, kernel_specs):
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=kernel_specs)
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    return client.execute()


def test_kernel_is_this_interpreter(kernel_specs):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import os, sys; print(sys.executable, os.getcwd())")
    ]
    executable, cwd = _execute(nb, kernel_specs).cells[0].outputs[0].text.split()
    assert Path(executable).resolve() == Path(sys.executable).resolve()
    assert Path(cwd).resolve() == NOTEBOOK_DIR


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, kernel_specs):
    nb = nbformat.read(path, as_version=4)
    try:
        _execute(nb, kernel_specs)
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{exc}", pytrace=False)
