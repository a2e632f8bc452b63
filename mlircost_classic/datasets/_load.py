"""``load_dataset`` and ``dataset_info``: the dataset as users see it."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._clusters import architecture_clusters, cluster_groups
from ._schema import KERNEL_LEVEL, LEVELS, SOURCES, VARIANT_LEVEL, record_source
from ._shards import (
    AMENDMENTS,
    KINDS,
    SUITE_SOURCES,
    get_data_home,
    iter_dataset,
    shard_paths,
)
from ._targets import select_targets

__all__ = ["load_dataset", "dataset_info", "DatasetInfo"]


#: What :func:`load_dataset`'s ``groups`` can follow.
GROUPINGS = ("family", "cluster")


def _default_level(kind: str, level: str | None) -> str:
    levels = {"kernels": (KERNEL_LEVEL,), "variants": (VARIANT_LEVEL,)}.get(
        kind, LEVELS
    )
    if level is None:
        return "linalg" if kind == "modules" else levels[0]
    if level not in levels:
        raise ValueError(
            f"level for kind={kind!r} must be one of {levels}, got {level!r}"
        )
    return level


def _select_sources(requested) -> set[str]:
    if requested is None:
        return set(SOURCES)
    chosen = {requested} if isinstance(requested, str) else set(requested)
    unknown = sorted(chosen - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown sources {unknown}; choose from {SOURCES}")
    return chosen


def _suite_ids(kind: str, data_home: str | os.PathLike | None, suite: str) -> set[str]:
    try:
        return {
            rec["id"] for rec in iter_dataset(kind, get_data_home(data_home, suite))
        }
    except FileNotFoundError:
        return set()


def _read_descr(data_home: Path, summary: str) -> str:
    sheet = data_home / "DATASET.md"
    if sheet.is_file():
        return sheet.read_text(encoding="utf-8")
    return summary


def _kept(rec: dict, level: str, kind: str, source: str) -> dict:
    """The fields of a record that :func:`load_dataset` returns (its ``source``)."""
    kept = {
        "id": rec["id"],
        "family": rec["family"],
        "source": source,
        "targets": rec["targets"],
        "text": rec["ir"][level],
    }
    if kind == "variants":
        kept |= {k: rec[k] for k in ("dispatch_id", "is_default", "config")}
    return kept


def load_dataset(
    kind: str = "modules",
    level: str | None = None,
    *,
    targets=None,
    as_frame: bool = False,
    data_home: str | os.PathLike | None = None,
    return_X_y: bool = False,
    suite: str = "main",
    hardware: str | None = None,
    source=None,
    groups: str = "family",
    exclude_families=None,
):
    """Load the MLIR cost dataset (no network access).

    Parameters
    ----------
    kind : {"modules", "kernels", "variants"}, default="modules"
        Whole programs, IREE dispatches (kernels) cut out of them, or
        dispatches compiled under candidate codegen configurations
        (variants, grouped by the dispatch they come from).
    level : str, optional
        Which MLIR text to return. Modules: ``"linalg"`` (default), ``"torch"``,
        ``"stablehlo"``, ``"tosa"`` or ``"affine"``; kernels: ``"dispatch"``
        (their only level); variants: ``"configured"``. Records without that level are dropped, as are
        failed records (they carry no target).
    targets : str or list of str, optional
        Target names (``"cpu_x86_64_v3.instructions"``), hardware names
        (``"nvidia_sm80"``: all its metrics) or metric names
        (``"instructions"``: on every hardware) to return, as
        :func:`select_targets` reads them; default all targets present, sorted.
    as_frame : bool, default=False
        Return ``data`` as a pandas Series of texts, ``target`` as a DataFrame,
        and fill ``frame`` (needs pandas).
    data_home : path-like, optional
        Folder with shard files; default the dataset bundled in the package.
        A collection run's folder (``modules.jsonl``) is read too.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    suite : {"main", "ood"}, default="main"
        ``"main"``: the training families. ``"ood"``: the out-of-distribution
        suite of third-party architectures (``hf_bert``, ``hf_vit`` ...),
        read from the ``ood`` folder of the data home; for evaluation only.
        Records the two suites share (a few kernels that training programs
        and OOD programs both compile to) are left out of both, so that a
        model fitted on ``"main"`` has seen none of the OOD suite.
    hardware : str, optional
        Variants only: keep the candidates measured for this hardware
        (``"nvidia_sm80"``); ``targets`` then defaults to its metrics.
    source : str or list of str, optional
        Keep only records from these sources (:data:`SOURCES`:
        ``"families"``, ``"torchvision"``, ``"transformers"``, ``"user"``);
        default all. A kernel's source is that of the first module it was
        seen in.
    groups : {"family", "cluster"}, default="family"
        What ``groups`` holds for modules and kernels: each record's family
        (architecture), or its cluster of same-design architectures
        (:func:`architecture_clusters` of the same data home: architectures
        whose programs compile to nearly the same dispatches are one group),
        for held-out evaluation that does not reward a design memorised under
        another name. Variants always group by dispatch.
    exclude_families : str or list of str, optional
        Leave out the records of these families (``"skinny_gemm"``: the
        module-level fits leave out a family drawn for its kernels, see
        :data:`~mlircost_classic.models.MODULE_FIT_EXCLUDED_FAMILIES`).

    Returns
    -------
    Bunch
        ``data`` (list of MLIR texts), ``target`` (2-D float array, NaN where a
        record lacks a target), ``target_names``, ``groups`` (family or
        cluster of each record, for ``GroupKFold``; variants: the id of their dispatch, so
        that a group holds one dispatch's candidates), ``families`` (family of
        each record), ``sources`` (source of each record), ``ids`` (content
        ids); variants add ``is_default`` (the compiler's own choice) and
        ``configs`` (structured configs); ``frame`` (DataFrame with id,
        source, family, text and targets when ``as_frame``, else None) and
        ``DESCR``.

    Raises
    ------
    FileNotFoundError
        When no dataset file exists.
    ValueError
        If ``kind``, ``level``, ``suite`` or a source is unknown.
    """
    sources = _select_sources(source)
    if isinstance(exclude_families, str):
        exclude_families = [exclude_families]
    excluded = frozenset(exclude_families or ())
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if hardware is not None and kind != "variants":
        raise ValueError("hardware= selects variants; use targets= for other kinds")
    groups_by = groups
    if groups_by not in GROUPINGS:
        raise ValueError(f"groups must be one of {GROUPINGS}, got {groups_by!r}")
    home = get_data_home(data_home, suite)
    level = _default_level(kind, level)
    if as_frame:
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError(
                "load_dataset(as_frame=True) needs pandas: pip install pandas"
            ) from exc
    # A kernel identical to another suite's kernel has the same id (same
    # source, same hardware). The suites stay disjoint: evaluation skips a
    # kernel that training has (it is not out of distribution), and training
    # skips one that the OOD suite has (a model fitted on it would have seen
    # part of the OOD programs it is measured on).
    seen = _suite_ids(kind, data_home, "ood" if suite == "main" else "main")
    # Only what the Bunch is made of is kept of each record (the text of one
    # level, not the others nor the provenance): loading the bundled kernels
    # held every parsed record at once, and that was the process's peak memory.
    default = SUITE_SOURCES[suite]
    records = [
        _kept(rec, level, kind, source)
        for rec in iter_dataset(kind, home)
        if rec.get("status") != "failed"
        and level in rec.get("ir", {})
        and rec["id"] not in seen
        and (hardware is None or hardware in rec["provenance"].get("hardware", []))
        and (source := record_source(rec, default)) in sources
        and rec.get("family") not in excluded
    ]
    available = sorted({name for rec in records for name in rec["targets"]})
    if hardware is not None and targets is None:
        targets = hardware
    names = select_targets(targets, available)
    target = np.full((len(records), len(names)), np.nan)
    column = {name: j for j, name in enumerate(names)}
    for i, rec in enumerate(records):
        for name, value in rec["targets"].items():
            if name in column:
                target[i, column[name]] = value
    data = [rec["text"] for rec in records]
    families = np.array([rec["family"] for rec in records], dtype=object)
    groups = families
    if groups_by == "cluster" and kind != "variants":  # variants: by dispatch below
        groups = cluster_groups(families, architecture_clusters(home))
    extra = {}
    if kind == "variants":
        groups = np.array([rec["dispatch_id"] for rec in records], dtype=object)
        extra = {
            "is_default": np.array([rec["is_default"] for rec in records], bool),
            "configs": [rec["config"] for rec in records],
        }
    origins = np.array([rec["source"] for rec in records], dtype=object)
    ids = np.array([rec["id"] for rec in records], dtype=object)
    frame = None
    if as_frame:
        target = pd.DataFrame(target, columns=names)
        data = pd.Series(data, name="text", dtype=object)
        frame = pd.concat(
            [
                pd.DataFrame({"id": ids, "source": origins, "family": families}),
                data,
                target,
            ],
            axis=1,
        )
    if return_X_y:
        return data, target
    summary = (
        f"MLIR cost dataset: {len(records)} {kind} at level {level!r}, "
        f"{len(names)} targets, {len(set(families))} families, read from {home}."
    )
    # The datasheet (one for both suites) sits in the data home.
    return Bunch(
        data=data,
        target=target,
        target_names=names,
        groups=groups,
        families=families,
        sources=origins,
        ids=ids,
        frame=frame,
        **extra,
        DESCR=_read_descr(get_data_home(data_home), summary),
    )


@dataclass
class DatasetInfo:
    """Summary of a dataset, what ``mlircost dataset info`` prints.

    Attributes
    ----------
    data_home : Path
    shards : dict
        kind (and ``"amendments"``) -> list of shard file names.
    counts : dict
        kind -> {"records", "unique_ir" (distinct compiled texts), "status":
        {status: n}, "source": {source: n}, "family": {family: n},
        "level": {level: n},
        "failures": {stage: n}, "amended" (records with amendments merged)}.
    targets : dict
        kind -> {target: {"count", "min", "median", "max"}}.
    problems : list of str
        Unreadable lines met while reading.
    """

    data_home: Path
    shards: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)

    def to_text(self) -> str:
        """Plain-text rendering for terminals and DATASET.md."""
        out = [f"dataset in {self.data_home}"]
        for kind, c in self.counts.items():
            out.append(
                f"\n{kind}: {c['records']} records ({c['unique_ir']} distinct "
                f"compiled texts) in {len(self.shards.get(kind, []))} shard(s), "
                f"{c['amended']} amended"
            )
            for title in ("status", "source", "family", "level", "failures"):
                items = ", ".join(f"{k} {v}" for k, v in sorted(c[title].items()))
                out.append(f"  {title}: {items or '-'}")
            for name, s in self.targets.get(kind, {}).items():
                out.append(
                    f"  {name}: n={s['count']} min={s['min']:.6g} "
                    f"median={s['median']:.6g} max={s['max']:.6g}"
                )
        if self.problems:
            out.append(f"\n{len(self.problems)} unreadable line(s) skipped")
        return "\n".join(out)


def dataset_info(
    data_home: str | os.PathLike | None = None, *, suite: str = "main"
) -> DatasetInfo:
    """Counts per family, level and status, failures per stage and target
    ranges of the dataset in ``data_home`` (default the bundled one).

    ``suite="ood"`` summarizes the out-of-distribution suite (the ``ood``
    folder of the data home) instead of the training one.

    Raises
    ------
    FileNotFoundError
        When no dataset file exists.
    ValueError
        If ``suite`` is unknown.
    """
    home = get_data_home(data_home, suite)
    info = DatasetInfo(data_home=home)
    found = False
    for kind in KINDS:
        try:
            records = list(iter_dataset(kind, home, info.problems))
        except FileNotFoundError:
            continue
        found = True
        info.shards[kind] = [p.name for p in shard_paths(kind, home)]
        info.shards[AMENDMENTS] = [p.name for p in shard_paths(AMENDMENTS, home)]
        failures = Counter(
            f["stage"] for rec in records for f in rec.get("failures", [])
        )
        values: dict[str, list[float]] = {}
        for rec in records:
            for name, value in rec.get("targets", {}).items():
                values.setdefault(name, []).append(value)
        info.counts[kind] = {
            "records": len(records),
            "unique_ir": len(
                {rec["ir"].get(rec.get("compiled_level") or "") for rec in records}
                - {None}
            ),
            "status": dict(Counter(rec.get("status") for rec in records)),
            "source": dict(
                Counter(record_source(rec, SUITE_SOURCES[suite]) for rec in records)
            ),
            "family": dict(Counter(rec.get("family") for rec in records)),
            "level": dict(Counter(lv for rec in records for lv in rec.get("ir", {}))),
            "failures": dict(failures),
            "amended": sum(
                bool(rec.get("provenance", {}).get("amendments")) for rec in records
            ),
        }
        info.targets[kind] = {
            name: {
                "count": len(v),
                "min": float(np.min(v)),
                "median": float(np.median(v)),
                "max": float(np.max(v)),
            }
            for name, v in sorted(values.items())
        }
    if not found:
        raise FileNotFoundError(f"no dataset files in {home}")
    return info
