"""Re-collect stored records and compare: how trustworthy are the labels?

:func:`verify` takes a sample of module records, measures their stored
compiled-level text again on the same hardware (filling the stripped weights
the way the collector did), and compares target by target, for each module
and for the kernel records made from it: deterministic
targets (instruction counts, registers, spills, VGPRs, code bytes ...) must
be equal; timings are reported as the ratio new / stored.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..datasets import KERNEL_LEVEL, iter_dataset

__all__ = ["VerifyReport", "verify"]


@dataclass
class VerifyReport:
    """Outcome of :func:`verify`.

    Attributes
    ----------
    checked : list of str
        Ids of the module records re-collected.
    checked_kernels : list of str
        Ids of the kernel records compared: those made from the modules in
        ``checked``.
    rows : list of dict
        One per (record, target): ``id``, ``kind`` (``"module"`` or
        ``"kernel"``), ``target``, ``stored``, ``measured``
        (None when the new run did not produce it), ``deterministic`` and
        ``match`` (deterministic targets) or ``ratio`` (the others).
    failures : dict
        Record id -> failures of the new run, ``[{stage, message}]``.
    notes : list of str
        Differences of set-up, such as compiler flags that changed.
    """

    checked: list = field(default_factory=list)
    checked_kernels: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    failures: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def mismatches(self) -> list[dict]:
        """Deterministic targets that differ or were not measured again."""
        return [r for r in self.rows if r["deterministic"] and not r["match"]]

    @property
    def passed(self) -> bool:
        """True when every deterministic target was reproduced exactly."""
        return bool(self.checked) and not self.mismatches

    def ratios(self) -> dict[str, list[float]]:
        """Non-deterministic target -> ratios new / stored."""
        out: dict[str, list[float]] = {}
        for r in self.rows:
            if not r["deterministic"] and r.get("ratio") is not None:
                out.setdefault(r["target"], []).append(r["ratio"])
        return out

    def to_text(self) -> str:
        """Plain-text summary for terminals and the datasheet."""
        exact = [r for r in self.rows if r["deterministic"]]
        lines = [
            f"verified {len(self.checked)} modules and {len(self.checked_kernels)} "
            "of their kernels: "
            f"{len(exact) - len(self.mismatches)}/{len(exact)} deterministic "
            f"targets reproduced exactly -> {'PASS' if self.passed else 'FAIL'}"
        ]
        for r in self.mismatches:
            lines.append(
                f"  MISMATCH {r['kind']} {r['id'][:12]} {r['target']}: "
                f"stored {r['stored']}, "
                f"measured {r['measured']}"
            )
        for target, values in sorted(self.ratios().items()):
            lines.append(
                f"  {target}: ratio new/stored median {np.median(values):.3f} "
                f"(min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"
            )
        for rid, failures in self.failures.items():
            for f in failures:
                lines.append(f"  failure {rid[:12]} {f['stage']}: {f['message'][:200]}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _records(records_or_dataset) -> list[dict]:
    if records_or_dataset is None or isinstance(records_or_dataset, str | os.PathLike):
        records = list(iter_dataset("modules", records_or_dataset))
        try:
            records += iter_dataset("kernels", records_or_dataset)
        except FileNotFoundError:
            pass  # a run that wrote no kernel
        return records
    return list(records_or_dataset)


def verify(
    records_or_dataset: Iterable[Mapping] | str | os.PathLike | None = None,
    sample: int = 3,
    seed: int = 0,
    *,
    timeouts: Mapping[str, float] | None = None,
    _stages=None,
) -> VerifyReport:
    """Re-collect ``sample`` module records and compare their targets and kernels.

    Each drawn module is measured again; its targets are compared with the
    record's, and so are those of the kernel records made from it (the kernel
    records whose ``module_id`` is the module's), each matched with the new
    run's dispatch of the same text (else of the same name, noted).

    Parameters
    ----------
    records_or_dataset : iterable of dict, path-like or None, default=None
        Module records with, optionally, their kernel records; or a folder
        read like ``load_dataset(data_home=...)`` (shards or a collection
        run); None for the bundled dataset.
    sample : int, default=3
        Number of module records drawn (without replacement) among those with
        targets; all of them if fewer.
    seed : int, default=0
        Seed of the draw.
    timeouts : mapping, optional
        Passed to ``measure``.

    Returns
    -------
    VerifyReport
        ``report.passed`` tells whether every deterministic target, of the
        modules and of their kernels, was reproduced exactly;
        ``report.to_text()`` prints the comparison.
    """
    from ._runner import _real_stages, _run_measure

    stages = _stages if _stages is not None else _real_stages()
    records = _records(records_or_dataset)
    candidates = [
        r
        for r in records
        if r.get("kind") == "module" and r.get("targets") and r.get("compiled_level")
    ]
    kernels_of: dict[str, list[dict]] = {}
    for r in records:
        if r.get("kind") == "kernel" and r.get("targets"):
            kernels_of.setdefault(r.get("module_id"), []).append(r)
    rng = np.random.default_rng(seed)
    picked = rng.choice(
        len(candidates), size=min(sample, len(candidates)), replace=False
    )
    report = VerifyReport()
    for index in sorted(picked):
        rec = candidates[index]
        level = rec["compiled_level"]
        # The collector compiled the stored (weights-stripped) text after
        # filling it; doing the same reproduces its input byte for byte.
        text = stages.fill(rec["ir"][level])
        hardware = sorted({name.split(".", 1)[0] for name in rec["targets"]})
        unknown = [hw for hw in hardware if hw not in stages.needs]
        if unknown:
            report.notes.append(f"{rec['id'][:12]}: hardware {unknown} is unknown here")
        groups: dict = {}
        for hw in hardware:
            if hw not in unknown:
                groups.setdefault(stages.needs[hw], []).append(hw)
        results = [
            _run_measure(stages, text, hws, level, timeouts) for hws in groups.values()
        ]
        measured, failures, flags = {}, [], {}
        # The new run's kernels by text and by name: a record is matched with
        # the dispatch of the same text, else of the same name.
        by_text: dict[str, dict] = {}
        by_name: dict[str, dict] = {}
        for result in results:
            measured.update(result["targets"])
            failures += result["failures"]
            flags.update(result["provenance"].get("commands", {}))
            for k in result["kernels"]:
                new = by_text.setdefault(k["source"], {}) if k["source"] else {}
                new.update(k["targets"])
                by_name.setdefault(k["name"], new)
        report.checked.append(rec["id"])
        if failures:
            report.failures[rec["id"]] = failures
        # Commands the record has: a newer collector runs more steps (calls,
        # launch), which do not make the compiles it shares differ.
        stored_flags = rec.get("provenance", {}).get("commands") or {}
        shared = set(stored_flags) & set(flags)
        if shared and any(stored_flags[k] != flags[k] for k in shared):
            report.notes.append(
                f"{rec['id'][:12]}: compiler flags differ from the record's"
            )
        _compare(report, stages, rec, measured, unknown)
        for kernel in kernels_of.get(rec["id"], []):
            new = by_text.get(kernel["ir"].get(KERNEL_LEVEL))
            report.checked_kernels.append(kernel["id"])
            if new is None and kernel["name"] in by_name:
                new = by_name[kernel["name"]]
                report.notes.append(
                    f"kernel {kernel['id'][:12]} ({kernel['name']}): "
                    "the dispatch text differs from the record's"
                )
            _compare(report, stages, kernel, new or {}, unknown)
    return report


def _compare(
    report: VerifyReport,
    stages,
    rec: Mapping,
    measured: Mapping[str, float],
    unknown: list[str],
) -> None:
    """Add one row per stored target of ``rec`` to ``report``."""
    for target, stored in sorted(rec["targets"].items()):
        hw, metric = target.split(".", 1)
        if hw in unknown:
            continue
        new = measured.get(target)
        row = {
            "id": rec["id"],
            "kind": rec["kind"],
            "target": target,
            "stored": stored,
            "measured": new,
            "deterministic": metric in stages.deterministic.get(hw, ()),
        }
        if row["deterministic"]:
            row["match"] = new is not None and new == stored
        else:
            row["ratio"] = None if new is None or stored == 0 else new / stored
        report.rows.append(row)
