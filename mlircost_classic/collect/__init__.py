"""Collect labelled MLIR programs with real toolchains (the ``[collect]`` extra).

Model families (``FAMILIES``, ``sample_specs``), real networks of torchvision
and transformers (``network_specs``; the sources in ``NETWORK_SOURCES``) and
the evaluation-only suite of ``transformers`` architectures (``OOD_FAMILIES``,
``ood_specs``) are lowered
to MLIR at several levels (``lower_spec``), compiled and measured for the
hardware of ``HARDWARE`` (``measure``), and recorded (``collect``,
``collect_specs``, ``collect_files``); ``verify`` re-collects records to check
their labels.

Every name is imported on first use, so ``import mlircost_classic.collect``
works without torch, torch-mlir or IREE installed.

Examples
--------
>>> from mlircost_classic.collect import collect        # doctest: +SKIP
>>> collect(["mlp"], count=4, seed=0, hardware=["cpu_x86_64_v3"],
...         out_dir="runs/demo")                         # doctest: +SKIP
"""

from .._lazy import lazy_exports

# Public name -> private module defining it.
_EXPORTS = {
    "CollectSummary": "_runner",
    "DEFAULT_TIMEOUTS": "_runner",
    "collect": "_runner",
    "collect_files": "_runner",
    "collect_specs": "_runner",
    "detect_level": "_runner",
    "VerifyReport": "_verify",
    "verify": "_verify",
    "FAMILIES": "_families",
    "Family": "_families",
    "ProgramSpec": "_families",
    "sample_specs": "_families",
    "OOD_FAMILIES": "_ood",
    "OOD_SIZES": "_ood",
    "ood_specs": "_ood",
    "NETWORK_SOURCES": "_sources",
    "family_source": "_sources",
    "find_family": "_sources",
    "network_specs": "_sources",
    "import_torchvision": "_torchvision",
    "LEVELS": "_lower",
    "Lowered": "_lower",
    "lower_module": "_lower",
    "lower_spec": "_lower",
    "fill_missing_resources": "_resources",
    "strip_resources": "_resources",
    "HARDWARE": "_targets",
    "HardwareSpec": "_targets",
    "target_names": "_targets",
    "KernelResult": "_measure",
    "MeasureResult": "_measure",
    "host_cpu": "_toolchain",
    "measure": "_measure",
    "toolchain_versions": "_toolchain",
    "export_gpu_batch": "_gpu_batch",
    "iree_dispatches": "_compile",
    "VARIANT_BACKENDS": "_variants",
    "candidate_configs": "_variants",
    "collect_dataset_variants": "_variants",
    "collect_variants": "_variants",
    "measure_candidate": "_variants",
    "gpu_hardware_name": "_gpu_batch",
    "import_gpu_results": "_gpu_batch",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
