"""Records, dataset files and ``load_dataset``.

A record is one JSON object (layout in :data:`FIELDS`, checked by
:func:`validate_record`); collection runs append them to JSON Lines files
(:func:`append_records`), :func:`pack` adds new ones to the bundled,
append-only shards, and :func:`load_dataset` serves them the scikit-learn way.
The target table (:data:`HARDWARE`, :data:`TARGETS`) says what every target
is; :func:`select_targets` is how a word (``instructions``, ``nvidia_sm80``)
selects targets everywhere.
"""

from ._jsonl import append_records, iter_records, read_records
from ._load import DatasetInfo, dataset_info, load_dataset
from ._schema import (
    AMENDMENT_FIELDS,
    DEFAULT_SOURCE,
    FIELDS,
    KERNEL_LEVEL,
    LEVELS,
    SCHEMA_VERSION,
    SOURCES,
    STATUSES,
    VARIANT_LEVEL,
    amendment_key,
    canonical_json,
    complete_record,
    kernel_record_id,
    module_record_id,
    record_id,
    record_source,
    validate_amendment,
    validate_record,
    variant_record_id,
)
from ._shards import (
    AMENDMENTS,
    COST_KINDS,
    KINDS,
    SUITES,
    PackResult,
    apply_amendments,
    get_data_home,
    iter_amendments,
    iter_dataset,
    pack,
    shard_paths,
)
from ._targets import (
    HARDWARE,
    TARGETS,
    Hardware,
    Metric,
    Target,
    clip_to_domain,
    resolve_target,
    select_targets,
    target_names,
    target_unit,
)

__all__ = [
    "AMENDMENTS",
    "HARDWARE",
    "TARGETS",
    "Hardware",
    "Metric",
    "Target",
    "clip_to_domain",
    "resolve_target",
    "select_targets",
    "target_names",
    "target_unit",
    "AMENDMENT_FIELDS",
    "DEFAULT_SOURCE",
    "COST_KINDS",
    "FIELDS",
    "KERNEL_LEVEL",
    "KINDS",
    "LEVELS",
    "SCHEMA_VERSION",
    "SOURCES",
    "STATUSES",
    "VARIANT_LEVEL",
    "SUITES",
    "DatasetInfo",
    "PackResult",
    "amendment_key",
    "append_records",
    "apply_amendments",
    "canonical_json",
    "complete_record",
    "dataset_info",
    "get_data_home",
    "iter_amendments",
    "iter_dataset",
    "iter_records",
    "kernel_record_id",
    "load_dataset",
    "module_record_id",
    "pack",
    "read_records",
    "record_id",
    "record_source",
    "shard_paths",
    "validate_amendment",
    "validate_record",
    "variant_record_id",
]
