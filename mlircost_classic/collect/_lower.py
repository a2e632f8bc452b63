"""Lower a PyTorch module to MLIR text at several levels.

torch-mlir's FX importer turns one exported program into ``torch``,
``linalg`` (linalg-on-tensors), ``stablehlo`` and ``tosa`` text; the
``affine`` text comes from the linalg text through IREE's ``iree-opt``
(bufferize, then ``--convert-linalg-to-affine-loops``). The module is
exported and imported once, so every level describes the same program.

Weights never reach the text: MLIR prints inline constants of more than
:data:`ELIDE_LIMIT` elements as ``dense_resource<__elided__>``, and the
``dialect_resources`` blobs are stripped. :func:`fill_missing_resources`
makes such text compilable again.

torch and torch-mlir are imported inside the functions, so importing this
module needs neither.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..datasets import LEVELS
from ._resources import strip_resources
from ._toolchain import run_tool

if TYPE_CHECKING:
    import torch

    from ._families import ProgramSpec

__all__ = ["LEVELS", "ELIDE_LIMIT", "Lowered", "lower_module", "lower_spec"]

#: Inline constants with more elements than this are printed as
#: ``dense_resource<__elided__>``; smaller ones (shapes, scalars, small
#: index lists) stay in the text because they shape the program.
ELIDE_LIMIT = 16

_OUTPUT_TYPES = {
    "torch": "torch",
    "linalg": "linalg-on-tensors",
    "stablehlo": "stablehlo",
    "tosa": "tosa",
}
_AFFINE_PASSES = (
    "--one-shot-bufferize=bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map",
    "--convert-linalg-to-affine-loops",
)
_MAX_ERROR_CHARS = 2000


@dataclass
class Lowered:
    """MLIR texts of one program, with what failed and how long each level took.

    Attributes
    ----------
    texts : dict of str to str
        Level -> MLIR text without weights, for the levels that succeeded.
    errors : dict of str to str
        Level -> short error message, for the levels that failed.
    seconds : dict of str to float
        Wall seconds per level, plus ``"export"`` (building, tracing and
        importing the module once, shared by all levels). ``"affine"`` counts ``iree-opt``,
        and the linalg import too when linalg itself was not requested.
    """

    texts: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _short_error(exc: BaseException) -> str:
    """The ``error:`` lines of a (often IR-dump sized) message, truncated."""
    message = str(exc)
    errors = [line.strip() for line in message.splitlines() if "error:" in line]
    text = "\n".join(errors) if errors else message.strip().split("\n", 1)[0]
    return f"{type(exc).__name__}: {text}"[:_MAX_ERROR_CHARS]


@contextlib.contextmanager
def _quiet_torch():
    """Hide the deprecation chatter of torch and torch-mlir, and only theirs."""
    with warnings.catch_warnings():
        for category in (FutureWarning, DeprecationWarning, UserWarning):
            # copyreg: torch's pytree deprecation fires while unpickling specs
            for module in (r"torch(\..*)?", r"torch_mlir(\..*)?", "copyreg"):
                warnings.filterwarnings("ignore", category=category, module=module)
        yield


class _LoweringError(Exception):
    """A torch-mlir lowering failed; the message holds its diagnostics."""


class _Importer:
    """One FX import of an exported program, printed at each level.

    The import (weights included: most of a lowering's time) and torch-mlir's
    FX-to-torch-backend pipeline run once; each level lowers a clone of that
    module with the pipeline ``fx.export_and_import`` would run, so the texts
    are those of one ``export_and_import`` per level. torch-mlir prints its
    diagnostics to the process's stderr and raises an exception without them,
    so they are caught by a handler on our own context.
    """

    def __init__(self, program) -> None:
        from torch_mlir import fx, ir
        from torch_mlir.compiler_utils import OutputType
        from torch_mlir.dialects import torch as torch_d
        from torch_mlir.extras.fx_importer import FxImporter

        self.context = ir.Context()
        torch_d.register_dialect(self.context)
        self.diagnostics: list[str] = []
        self.handle = self.context.attach_diagnostic_handler(self._on_diagnostic)
        self.module = None
        self.error: str | None = None
        try:
            importer = FxImporter(context=self.context)
            importer.import_frozen_program(program, func_name="main")
            # export_and_import's own step up to the torch backend IR
            self.module = fx._module_lowering(
                False, False, OutputType.TORCH, importer.module
            )
        except Exception as exc:  # torch-mlir raises plain Exceptions
            self.error = self._message(exc)

    def _on_diagnostic(self, diagnostic) -> bool:
        from torch_mlir import ir

        if diagnostic.severity == ir.DiagnosticSeverity.ERROR:
            self.diagnostics.append(f"{diagnostic.location}: {diagnostic.message}")
        return True

    def _message(self, exc: BaseException) -> str:
        return ("\n".join(self.diagnostics) or _short_error(exc))[:_MAX_ERROR_CHARS]

    def text(self, level: str) -> str:
        """The program at ``level``, printed without weights."""
        from torch_mlir.compiler_utils import (
            BackendLoweringOptions,
            OutputType,
            lower_mlir_module,
        )

        if self.error is not None:
            raise _LoweringError(self.error)
        self.diagnostics.clear()
        try:
            module = self.module.operation.clone()
            lower_mlir_module(
                False,
                OutputType.get(_OUTPUT_TYPES[level]),
                module,
                BackendLoweringOptions(allow_non_finites=True),
            )
            # torch-mlir's TOSA custom syntax (e.g. tosa.const_shape) is newer
            # than what IREE's parser accepts; the generic form reads in both.
            return strip_resources(
                module.get_asm(
                    large_elements_limit=ELIDE_LIMIT,
                    large_resource_limit=ELIDE_LIMIT,
                    print_generic_op_form=level == "tosa",
                )
            )
        except Exception as exc:  # torch-mlir raises plain Exceptions
            raise _LoweringError(self._message(exc)) from exc

    def close(self) -> None:
        self.handle.detach()


def _iree_opt() -> str:
    from iree.compiler.tools.binaries import find_tool

    return find_tool("iree-opt")


def _affine(linalg_text: str, timeout: float) -> str:
    """Bufferize linalg text and convert it to affine loops with ``iree-opt``.

    ``timeout`` is a budget of CPU seconds (:func:`~._toolchain.run_tool`), so
    a lowering pushed behind other work does not fail for the time it waited.
    """
    with tempfile.TemporaryDirectory(prefix="mlircost-affine-") as tmp:
        source = Path(tmp) / "linalg.mlir"
        source.write_text(linalg_text, encoding="utf-8")
        cmd = [
            _iree_opt(),
            *_AFFINE_PASSES,
            f"--mlir-elide-elementsattrs-if-larger={ELIDE_LIMIT}",
            f"--mlir-elide-resource-strings-if-larger={ELIDE_LIMIT}",
            str(source),
        ]
        return strip_resources(run_tool(cmd, timeout=timeout).stdout)


def lower_module(
    module: torch.nn.Module,
    example_inputs: Sequence[torch.Tensor],
    levels: Sequence[str] = LEVELS,
    *,
    affine_timeout: float = 120.0,
) -> Lowered:
    """Export a module once and print it at the requested levels.

    Parameters
    ----------
    module : torch.nn.Module
        The program, in eval mode.
    example_inputs : sequence of torch.Tensor
        Inputs that fix every shape (programs are static).
    levels : sequence of str, default=LEVELS
        Any of ``"torch"``, ``"linalg"``, ``"stablehlo"``, ``"tosa"``,
        ``"affine"``. ``"affine"`` is derived from the linalg text, which is
        then made even if not requested (but returned only if requested).
    affine_timeout : float, default=120.0
        CPU seconds allowed to ``iree-opt`` (a :class:`~._toolchain.Budget`,
        which also stops a hung tool).

    Returns
    -------
    Lowered
        Never raises for a failing export or lowering: each failed level
        gets an entry in ``errors`` instead of ``texts``.

    Raises
    ------
    ValueError
        If a level name is unknown.
    """
    unknown = sorted(set(levels) - set(LEVELS))
    if unknown:
        raise ValueError(f"unknown levels {unknown}; choose from {list(LEVELS)}")
    result = Lowered()
    with _quiet_torch():
        import torch
        from torch_mlir.extras.fx_decomp_util import get_decomposition_table

        start = time.perf_counter()
        try:
            program = torch.export.export(module, tuple(example_inputs), strict=False)
            program = program.run_decompositions(get_decomposition_table())
        except Exception as exc:  # any tracing failure is a recorded outcome
            message = "export: " + _short_error(exc)
            result.errors.update(dict.fromkeys(levels, message))
            return result
        finally:
            result.seconds["export"] = time.perf_counter() - start

        wanted = [lv for lv in _OUTPUT_TYPES if lv in levels]
        if "affine" in levels and "linalg" not in wanted:
            wanted.append("linalg")
        linalg_text = None
        start = time.perf_counter()
        importer = _Importer(program)
        result.seconds["export"] += time.perf_counter() - start
        for level in wanted:
            start = time.perf_counter()
            try:
                text = importer.text(level)
            except _LoweringError as exc:
                if level in levels:
                    result.errors[level] = str(exc)
                if level == "linalg" and "affine" in levels:
                    result.errors["affine"] = f"linalg: {exc}"
                text = None
            seconds = time.perf_counter() - start
            if level in levels:
                result.seconds[level] = seconds
                if text is not None:
                    result.texts[level] = text
            else:  # linalg made only for affine: its time counts there
                result.seconds["affine"] = seconds
            if level == "linalg":
                linalg_text = text
        importer.close()

    if "affine" in levels and linalg_text is not None:
        start = time.perf_counter()
        try:
            result.texts["affine"] = _affine(linalg_text, affine_timeout)
        except (RuntimeError, OSError) as exc:
            result.errors["affine"] = _short_error(exc)
        seconds = time.perf_counter() - start
        result.seconds["affine"] = result.seconds.get("affine", 0.0) + seconds
    return result


def lower_spec(spec: ProgramSpec, levels: Sequence[str] = LEVELS) -> Lowered:
    """Build the program of a spec and lower it (see :func:`lower_module`).

    Parameters
    ----------
    spec : ProgramSpec
        Family name (of any source, or of the OOD suite's ``OOD_FAMILIES``)
        and parameters.
    levels : sequence of str, default=LEVELS
        Levels to print.

    Returns
    -------
    Lowered
        A failure to build the module is recorded for every level, as
        ``"build: ..."``, with the build time under ``seconds["export"]``.
    """
    from ._sources import find_family

    # Every source, and the evaluation-only OOD suite, lower alike.
    family = find_family(spec.family)
    start = time.perf_counter()
    try:
        with _quiet_torch():
            module, inputs = family.build(spec.params)
    except Exception as exc:  # a bad parameter set is a recorded outcome
        message = "build: " + _short_error(exc)
        return Lowered(
            errors=dict.fromkeys(levels, message),
            seconds={"export": time.perf_counter() - start},
        )
    built = time.perf_counter() - start
    result = lower_module(module, inputs, levels)
    result.seconds["export"] = result.seconds.get("export", 0.0) + built
    return result
