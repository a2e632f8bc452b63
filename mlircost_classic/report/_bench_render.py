"""The benchmark's results as people read them: tables, ``results.md``, plots.

Every function here reads the rows of ``results.csv`` (:data:`BENCHMARK_COLUMNS`)
and a ``context`` dict of the run (counts, settings, timings) that
:func:`~._bench_runs.run_benchmark` builds; none fits a model.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._version import __version__
from ..datasets import COST_KINDS
from ..models import SPILL_THRESHOLD
from ._bench_models import CLASSICAL, MODEL_DESCRIPTIONS, MODEL_NAMES, NEURAL

__all__ = [
    "BENCHMARK_COLUMNS",
    "README_END",
    "README_START",
    "metric_table",
    "draw_plots",
    "render_markdown",
    "timing_table",
    "update_readme",
]

#: Columns of ``results.csv``.
BENCHMARK_COLUMNS = ("kind", "protocol", "model", "target", "metric", "value", "n")

README_START = "<!-- benchmark:start -->"
README_END = "<!-- benchmark:end -->"


def _host() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


# -- tables -----------------------------------------------------------------


def _lookup(rows):
    return {
        (r["kind"], r["protocol"], r["model"], r["target"], r["metric"]): r["value"]
        for r in rows
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _targets_of(rows, kind, protocol) -> list[str]:
    seen = []
    for r in rows:
        if (
            r["kind"] == kind
            and r["protocol"] == protocol
            and r["target"] != "*"
            and r["target"] not in seen
        ):
            seen.append(r["target"])
    return seen


def metric_table(rows, kind, protocol, metric="spearman", models=None) -> str:
    """A markdown table: one row per target, one column per model."""
    values = _lookup(rows)
    models = models or [m for m in MODEL_NAMES if any(r["model"] == m for r in rows)]
    higher = metric not in ("mape", "median_ape")
    lines = [
        "| target | n | " + " | ".join(models) + " |",
        "|---|---:|" + "---:|" * len(models),
    ]
    ns = {
        r["target"]: r["n"]
        for r in rows
        if r["kind"] == kind and r["protocol"] == protocol and r["metric"] == metric
    }
    for target in _targets_of(rows, kind, protocol):
        if target not in ns:
            continue  # a metric of some targets only (the spill scores)
        cells = [values.get((kind, protocol, m, target, metric)) for m in models]
        finite = [c for c in cells if c is not None and not math.isnan(c)]
        best = (max(finite) if higher else min(finite)) if finite else None
        text = [
            f"**{_fmt(c)}**" if c is not None and c == best else _fmt(c) for c in cells
        ]
        lines.append(f"| {target} | {ns.get(target, '')} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def spill_table(rows, kind, protocol, models=None) -> str | None:
    """A markdown table of the spill scores: F1 (precision / recall) per model.

    None when no target of ``kind`` and ``protocol`` has them.
    """
    values = _lookup(rows)
    models = models or [m for m in MODEL_NAMES if any(r["model"] == m for r in rows)]
    targets = [
        t
        for t in _targets_of(rows, kind, protocol)
        if any((kind, protocol, m, t, "spill_f1") in values for m in models)
    ]
    if not targets:
        return None
    ns = {
        r["target"]: r["n"]
        for r in rows
        if r["kind"] == kind and r["protocol"] == protocol and r["metric"] == "spill_f1"
    }
    lines = [
        "| target | n | spilling | " + " | ".join(models) + " |",
        "|---|---:|---:|" + "---:|" * len(models),
    ]
    for target in targets:
        share = next(
            (
                values[(kind, protocol, m, target, "spill_share")]
                for m in models
                if (kind, protocol, m, target, "spill_share") in values
            ),
            None,
        )
        cells = [
            f"{_fmt(values.get((kind, protocol, m, target, 'spill_f1')), 2)} "
            f"({_fmt(values.get((kind, protocol, m, target, 'spill_precision')), 2)}"
            f" / {_fmt(values.get((kind, protocol, m, target, 'spill_recall')), 2)})"
            for m in models
        ]
        lines.append(
            f"| {target} | {ns.get(target, '')} | {_fmt(share, 3)} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def timing_table(rows, kind, protocol="group", models=None) -> str:
    """A markdown table of fit and prediction times, one row per model."""
    values = _lookup(rows)
    ns = {
        (r["model"], r["metric"]): r["n"]
        for r in rows
        if r["kind"] == kind and r["protocol"] == protocol and r["target"] == "*"
    }
    models = models or [m for m in MODEL_NAMES if any(r["model"] == m for r in rows)]
    unit = kind.removesuffix("s")
    batch = next(
        (n for (_, metric), n in ns.items() if metric == "latency_batch_ms"), 0
    )
    lines = [
        f"| model | fit s (mean per fold) | one {unit} ms (median) | "
        f"batch of {batch:,} ms (median) |",
        "|---|---:|---:|---:|",
    ]
    for m in models:
        fit = values.get((kind, protocol, m, "*", "fit_seconds"))
        if fit is None:
            continue
        one = values.get((kind, protocol, m, "*", "latency_one_ms"))
        many = values.get((kind, protocol, m, "*", "latency_batch_ms"))
        lines.append(f"| {m} | {_fmt(fit, 2)} | {_fmt(one, 2)} | {_fmt(many, 1)} |")
    return "\n".join(lines)


_TITLES = {
    "group": "by family / architecture",
    "template": "by op template",
    "random": "random split",
    "ood": "out of distribution",
}


def _by_source(rows, kind, sources) -> list[str]:
    """The by-family Spearman tables again, one per source of the records."""
    lines = []
    for source, n in sources.items():
        protocol = f"group:{source}"
        if not any(r["kind"] == kind and r["protocol"] == protocol for r in rows):
            continue
        lines += [
            f"#### {source} records only ({n}), by family / architecture",
            "",
            metric_table(rows, kind, protocol, "spearman"),
            "",
        ]
    if lines:
        lines = [
            "The same out-of-fold predictions scored on each source's records "
            "alone (targets with fewer than 10 measured records of a source are "
            "left out):",
            "",
            *lines,
        ]
    return lines


def _ood_line(kind, context) -> str | None:
    if not context["ood_requested"]:
        return None
    if kind in context["ood"]:
        return (
            f"Out of distribution: fitted on all {context['kinds'][kind]['records']} "
            f"records, scored on the {context['ood'][kind]} records of the OOD suite."
        )
    return (
        f"Out of distribution: skipped, the OOD suite has no {kind} "
        f'(`load_dataset({kind!r}, suite="ood")` found no records).'
    )


def render_markdown(
    rows,
    context,
    figures=(),
    *,
    goals: Callable[[list[dict], dict], list[str]] | None = None,
) -> str:
    """``results.md``: the tables, the goals if given, and where they were measured.

    ``goals(rows, context)`` returns the lines of the "Goals" section.
    """
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    load = [f"{x:.1f}" for x in context.get("load", []) if x is not None]
    lines = [
        "# Benchmark results",
        "",
        f"Measured {date} on {_host()}, mlircost_classic {__version__}, "
        f"in {context['seconds'] / 60:.1f} min"
        + (f" (load average {' then '.join(load)})" if load else "")
        + (
            " — **quick smoke run on a subsample; not the benchmark's figures**"
            if context["quick"]
            else ""
        )
        + ".",
        "",
        f"Reproduce: `{context['command']}`. Every metric of every model, target and "
        "protocol is in `results.csv` (columns " + ", ".join(BENCHMARK_COLUMNS) + ").",
        "",
        f"Protocols: **by family / architecture** (GroupKFold, {context['n_splits']} "
        "folds: every test fold holds families — for the torchvision and "
        "transformers sources, architectures — never seen in training; the "
        "headline, also scored per source), **by op "
        "template** (kernels only; GroupKFold by `op_templates`, the dispatch's op "
        "sequence without shapes: no test template is seen in training, whatever "
        f"its family), **random** (shuffled KFold, {context['n_splits']} folds) and "
        "**out of distribution** "
        "(fitted on the whole dataset, scored on the OOD suite of real "
        "architectures, when it has records). Metrics are computed on the pooled "
        "out-of-fold predictions of each target's measured rows; n is that number "
        "of rows. Best value per row in bold.",
        "",
        "Models:",
        "",
        *[
            f"- **{name}**: {MODEL_DESCRIPTIONS[name]}"
            for name in MODEL_NAMES
            if name in context["models"]
        ],
        "",
    ]
    for kind, counts in context["kinds"].items():
        of = (
            f" (a sample of the {counts['bundled']})"
            if counts["records"] < counts["bundled"]
            else ""
        )
        skipped = context["skipped"].get(kind)
        lines += [
            f"## {kind}",
            "",
            f"{counts['records']} records{of}, {counts['families']} families, "
            f"{counts['targets']} targets"
            + (
                f"; not benchmarked, fewer than {context['min_varied']} records "
                "differ from "
                "their most common value: "
                + ", ".join(f"{t} ({n})" for t, n in skipped.items())
                if skipped
                else ""
            )
            + ". Noise figures (`*_spread`) are not targets.",
            "",
        ]
        ood_line = _ood_line(kind, context)
        if ood_line:
            lines += [ood_line, ""]
        for protocol in [*context["protocols"], "ood"]:
            if any(r["kind"] == kind and r["protocol"] == protocol for r in rows):
                lines += [
                    f"### Spearman rank correlation, {_TITLES[protocol]}",
                    "",
                    metric_table(rows, kind, protocol, "spearman"),
                    "",
                ]
            if protocol == "group":
                lines += _by_source(rows, kind, counts.get("sources", {}))
        for protocol in [*context["protocols"], "ood"]:
            table = spill_table(rows, kind, protocol)
            if table:
                lines += [
                    f"### Does it spill: F1 (precision / recall), {_TITLES[protocol]}",
                    "",
                    "Spill and stack targets as a classification: a record spills "
                    f"when its label is above 0, a model says so when it predicts at "
                    f"least {SPILL_THRESHOLD:g} (a fixed rule, not tuned). "
                    "`spilling` is the share of records that spill; always saying "
                    "yes would score an F1 of 2s / (1 + s).",
                    "",
                    table,
                    "",
                ]
        headline = "group" if "group" in context["protocols"] else "random"
        lines += [
            f"### Median absolute percentage error, {_TITLES[headline]}",
            "",
            "As a fraction: 0.25 is 25%.",
            "",
            metric_table(rows, kind, headline, "median_ape"),
            "",
            f"### Time, {_TITLES[headline]}",
            "",
            timing_table(rows, kind, headline),
            "",
        ]
    if goals is not None:
        lines += ["## Goals", ""] + goals(rows, context) + [""]
    if figures:
        lines += ["## Plots", ""] + [f"![{f}]({f})" for f in figures] + [""]
    return "\n".join(lines)


def update_readme(readme: str | os.PathLike, results_md: str | os.PathLike) -> bool:
    """Put the headline tables of ``results.md`` between the README's markers.

    The README keeps a block between ``<!-- benchmark:start -->`` and
    ``<!-- benchmark:end -->``; it is replaced by the line of ``results.md``
    that says when and where it was measured, the Spearman tables by family /
    architecture of each kind (all records, then per source), the goals and a link to ``results.md``. The rest of the README
    is left as it is.

    Returns
    -------
    bool
        Whether the README changed.
    """
    readme = Path(readme)
    results_md = Path(results_md)
    text = readme.read_text(encoding="utf-8")
    start = text.find(README_START)
    end = text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no {README_START} ... {README_END} block")
    results = results_md.read_text(encoding="utf-8")
    measured = next(
        (line for line in results.splitlines() if line.startswith("Measured ")), None
    )
    if measured is None:
        raise ValueError(f"{results_md} is not a results.md of run_benchmark")
    keep = [measured]
    for section in re.split(r"^## ", results, flags=re.M)[1:]:
        title, _, body = section.partition("\n")
        title = title.strip()
        if title in COST_KINDS:
            for part in re.split(r"^### ", body, flags=re.M)[1:]:
                heading, _, table = part.partition("\n")
                headline = f"Spearman rank correlation, {_TITLES['group']}"
                if heading.strip() == headline:
                    keep.append(f"**{title}**: {headline}")
                    keep.append(table.strip())
        elif title == "Goals":
            keep += ["**Goals**", body.strip()]
    link = Path(os.path.relpath(results_md.resolve(), readme.resolve().parent))
    keep.append(f"All tables and plots: [{link.as_posix()}]({link.as_posix()}).")
    block = "\n\n".join(keep)
    new = text[: start + len(README_START)] + "\n" + block + "\n" + text[end:]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


# -- plots ------------------------------------------------------------------


def _axis_scale(y: np.ndarray) -> str:
    from ._plots import _scale_of

    scale = _scale_of(y)
    # Less than a decade and a half (occupancy, SGPRs): log ticks say less.
    if scale == "log" and y.max() < 30 * y.min():
        return "linear"
    return scale


def draw_plots(out: Path, datasets, predictions, rows, models) -> list[str]:
    """Predicted against measured, and errors by model, for each kind.

    Drawn on :class:`~matplotlib.figure.Figure` objects, never through pyplot:
    no backend is switched for the caller.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from ._plots import _limits, _linthresh, _save

    figures = []
    colours = {m: f"C{i}" for i, m in enumerate(MODEL_NAMES)}
    values = _lookup(rows)
    for kind, (_, Y, names, _) in datasets.items():
        every = [m for m in models if (kind, "group", m) in predictions]
        if not every:
            continue

        def mean_sp(m, kind=kind, names=names):
            sps = [values.get((kind, "group", m, t, "spearman"), np.nan) for t in names]
            return np.nanmean(sps) if not np.isnan(sps).all() else -np.inf

        # The best neural model only: more clouds on one panel hide each other.
        neural = [m for m in every if m in NEURAL]
        shown = [m for m in every if m not in NEURAL or m == max(neural, key=mean_sp)]
        ncols = min(4, len(names))
        nrows = math.ceil(len(names) / ncols)
        fig = Figure(figsize=(3.3 * ncols, 3.2 * nrows + 0.8), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
        off_axes = 0
        for ax, (j, target) in zip(axes.flat, enumerate(names), strict=False):
            y = Y[:, j]
            measured = ~np.isnan(y)
            scale = _axis_scale(y[measured])
            lo, hi = _limits(y[measured], scale)
            for m in shown:
                p = predictions[(kind, "group", m)][measured, j]
                inside = (p >= lo) & (p <= hi)
                off_axes += int((~inside).sum())
                ax.scatter(
                    y[measured],
                    np.clip(np.nan_to_num(p, nan=lo), lo, hi),
                    s=6,
                    alpha=0.45,
                    color=colours[m],
                    edgecolors="none",
                    rasterized=True,
                )
            ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
            if scale != "linear":
                kwargs = (
                    {"linthresh": _linthresh(y[measured])} if scale == "symlog" else {}
                )
                ax.set_xscale(scale, **kwargs)
                ax.set_yscale(scale, **kwargs)
            else:
                ax.locator_params(nbins=4)
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            ax.grid(True, alpha=0.3)
            sp = values.get((kind, "group", CLASSICAL, target, "spearman"))
            rho = "" if sp is None else f"\nxgboost Spearman {_fmt(sp, 2)}"
            ax.set_title(target + rho, fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in axes.flat[len(names) :]:
            ax.set_visible(False)
        fig.supxlabel("measured", fontsize=9)
        fig.supylabel("predicted, out of fold (by family)", fontsize=9)
        handles = [
            Line2D([], [], marker="o", ls="", color=colours[m], label=m) for m in shown
        ]
        handles.append(Line2D([], [], color="black", lw=0.8, label="y = x"))
        fig.legend(handles=handles, loc="outside upper center", ncol=len(handles))
        if off_axes:
            fig.text(
                0.99,
                0.005,
                f"{off_axes} prediction(s) beyond the measured range, drawn at the edge",
                ha="right",
                va="bottom",
                fontsize=7,
            )
        name = f"pred_vs_measured_{kind}.png"
        _save(fig, out / name)
        figures.append(name)

        # Error by model: |log10 ratio| over all targets, and Spearman per target.
        fig = Figure(
            figsize=(12, max(4.0, 0.3 * len(names) + 1.8)), layout="constrained"
        )
        left, right = fig.subplots(1, 2, width_ratios=(1, 1.3))
        errors = []
        for m in every:
            p = predictions[(kind, "group", m)]
            ok = ~np.isnan(Y) & ~np.isnan(p)
            with np.errstate(over="ignore", invalid="ignore"):
                ratio = np.log10(
                    (np.clip(p[ok], 0, np.finfo(float).max) + 1) / (Y[ok] + 1)
                )
            errors.append(np.abs(ratio))
        box = left.boxplot(
            errors,
            showfliers=False,
            patch_artist=True,
            medianprops={"color": "black"},
        )
        for patch, m in zip(box["boxes"], every, strict=True):
            patch.set_facecolor(colours[m])
            patch.set_alpha(0.6)
        left.set_xticks(range(1, len(every) + 1), every, rotation=30, ha="right")
        left.set_ylabel("|log10((predicted + 1) / (measured + 1))|")
        left.set_title(f"{kind}: error over all targets (by family)", fontsize=10)
        left.grid(True, axis="y", alpha=0.3)
        ypos = np.arange(len(names))
        for k, m in enumerate(every):
            sps = [values.get((kind, "group", m, t, "spearman"), np.nan) for t in names]
            right.scatter(
                sps,
                ypos + (k - (len(every) - 1) / 2) * 0.12,
                color=colours[m],
                label=m,
                s=18,
            )
        right.set_yticks(ypos, names, fontsize=7)
        right.set_ylim(len(names) - 0.5, -0.5)
        right.set_xlabel("Spearman (by family)")
        right.set_xlim(min(0.0, right.get_xlim()[0]), 1.0)
        right.axvline(0.9, color="grey", lw=0.6, ls="--")
        right.grid(True, axis="x", alpha=0.3)
        right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        right.set_title("rank correlation per target (dashed: 0.9)", fontsize=10)
        name = f"error_by_model_{kind}.png"
        _save(fig, out / name)
        figures.append(name)
    return figures
