"""The report's figures, drawn with matplotlib's object API into PNG files.

Figures are made with :class:`matplotlib.figure.Figure` and saved through the
Agg canvas, never through ``pyplot``: no window opens, no global backend is
switched and nothing is left in pyplot's figure registry of the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

__all__ = [
    "plot_coefficients",
    "plot_importance",
    "plot_overview",
    "plot_predicted_vs_measured",
    "plot_shap_summary",
]

_LABEL_CHARS = 60
_DPI = 110
_MODEL_COLOURS = {"xgboost": "#1f77b4", "linear": "#ff7f0e"}
_RAISES, _LOWERS = "#d62728", "#1f77b4"


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=_DPI)


def _scale_of(y: np.ndarray) -> str:
    """Axis scale that shows every measured value: log, symlog with zeros, else linear."""
    if y.size == 0 or y.min() < 0 or y.max() == y.min() == 0:
        return "linear"
    return "log" if y.min() > 0 else "symlog"


def _linthresh(y: np.ndarray) -> float:
    """Linear range of a symlog axis: up to 1 (counts, bytes) or the smallest value."""
    positive = y[y > 0]
    return min(1.0, float(positive.min())) if positive.size else 1.0


def _limits(y: np.ndarray, scale: str) -> tuple[float, float]:
    lo, hi = float(y.min()), float(y.max())
    if scale == "log":
        return lo / 2, hi * 2
    if scale == "symlog":
        # Below 0 a little, so that a prediction of -0.01 for a measured 0 shows.
        return -0.5 * _linthresh(y), hi * 2
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
    return lo - pad, hi + pad


def plot_predicted_vs_measured(
    path: Path,
    target: str,
    y: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    groups: np.ndarray,
    spearman: Mapping[str, float],
) -> None:
    """One panel per model: predicted against measured on the held-out rows.

    Both axes share one scale (log where every measured value is positive,
    symlog where some are 0) and the limits of the measured values; a
    prediction outside them is drawn at the edge as an open marker and counted
    in the panel.
    """
    scale = _scale_of(y)
    lo, hi = _limits(y, scale)
    families = sorted(set(groups.tolist()))
    colours = {f: f"C{i % 10}" for i, f in enumerate(families)}
    fig = Figure(figsize=(5.0 * len(predictions), 5.6), layout="constrained")
    axes = fig.subplots(1, len(predictions), squeeze=False)[0]
    for ax, (name, pred) in zip(axes, predictions.items(), strict=True):
        inside = (pred >= lo) & (pred <= hi)
        shown = np.clip(np.nan_to_num(pred, nan=lo, posinf=hi, neginf=lo), lo, hi)
        for family in families:
            rows = groups == family
            ax.scatter(
                y[rows & inside],
                shown[rows & inside],
                s=22,
                alpha=0.75,
                color=colours[family],
                edgecolors="none",
            )
            ax.scatter(
                y[rows & ~inside],
                shown[rows & ~inside],
                s=30,
                facecolors="none",
                edgecolors=colours[family],
                linewidths=1.2,
            )
        ax.plot([lo, hi], [lo, hi], color="black", linewidth=1, label="y = x")
        if scale == "log":
            ax.plot([lo, hi], [2 * lo, 2 * hi], ":", color="grey", linewidth=1)
            ax.plot([lo, hi], [lo / 2, hi / 2], ":", color="grey", linewidth=1)
        if scale == "symlog":
            ax.set_xscale("symlog", linthresh=_linthresh(y))
            ax.set_yscale("symlog", linthresh=_linthresh(y))
        elif scale == "log":
            ax.set_xscale("log")
            ax.set_yscale("log")
        else:
            ax.locator_params(nbins=5)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.grid(True, which="major", alpha=0.3)
        ax.set_xlabel("measured")
        ax.set_ylabel("predicted")
        rho = spearman.get(name, float("nan"))
        rho_text = "n/a" if np.isnan(rho) else f"{rho:.3f}"
        ax.set_title(f"{name}: Spearman {rho_text} (n={len(y)})", fontsize=11)
        outside = int((~inside).sum())
        if outside:
            ax.text(
                0.98,
                0.02,
                f"{outside} prediction(s) off the axes (open markers)",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=8,
            )
    fig.suptitle(f"{target}: held-out families ({scale} axes)", fontsize=12)
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colours[f], label=f)
        for f in families
    ]
    handles.append(Line2D([], [], color="black", linewidth=1, label="y = x"))
    if scale == "log":
        handles.append(
            Line2D([], [], color="grey", linestyle=":", linewidth=1, label="×2, ÷2")
        )
    fig.legend(handles=handles, loc="outside lower center", ncol=min(6, len(handles)))
    _save(fig, path)


def _barh(ax, labels: Sequence[str], values, *, xerr=None, colours=None) -> None:
    positions = np.arange(len(labels))[::-1]
    ax.barh(positions, values, xerr=xerr, color=colours or "#1f77b4", capsize=2)
    ax.set_yticks(positions, [_short(label) for label in labels], fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)


def plot_importance(
    path: Path,
    target: str,
    names: Sequence[str],
    gain_share: np.ndarray,
    permutation_mean: np.ndarray,
    permutation_std: np.ndarray,
    *,
    top: int = 15,
    log: bool,
) -> None:
    """The xgboost model's top features by gain, with their permutation importance.

    Two panels sharing the feature axis: share of the total gain (training
    fold) and the drop of held-out R² when the feature is shuffled (NaN where
    not computed).
    """
    order = [
        i for i in np.argsort(-gain_share, kind="stable")[:top] if gain_share[i] > 0
    ]
    fig = Figure(figsize=(10, 1.2 + 0.32 * max(len(order), 3)), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=[1, 1])
    if not order:
        left.text(0.5, 0.5, "no split: the model is constant", ha="center")
        left.set_axis_off()
        right.set_axis_off()
    else:
        labels = [names[i] for i in order]
        _barh(left, labels, 100 * gain_share[order])
        left.set_xlabel("share of total gain (%)")
        perm = permutation_mean[order]
        err = np.nan_to_num(permutation_std[order])
        _barh(right, labels, np.nan_to_num(perm), xerr=err, colours="#2ca02c")
        right.axvline(0, color="black", linewidth=0.8)
        scale = "log1p scale" if log else "target scale"
        right.set_xlabel(f"held-out R² drop when shuffled ({scale})")
        for k, value in enumerate(perm):
            if np.isnan(value):
                right.text(
                    0, len(order) - 1 - k, " not computed", va="center", fontsize=7
                )
    fig.suptitle(f"{target}: xgboost feature importance (top {len(order)} by gain)")
    _save(fig, path)


def _swarm_offsets(x: np.ndarray, width: float = 0.38, bins: int = 60) -> np.ndarray:
    """Vertical offsets that spread points sharing an x bin, as a beeswarm does."""
    offsets = np.zeros(len(x))
    if len(x) == 0 or np.ptp(x) == 0:
        return offsets
    which = np.floor((x - x.min()) / np.ptp(x) * (bins - 1)).astype(int)
    for b in np.unique(which):
        members = np.flatnonzero(which == b)
        k = np.arange(len(members))
        # 0, +1, -1, +2, -2, ...: the densest bins fan out most.
        step = np.where(k % 2 == 1, (k + 1) // 2, -(k // 2))
        spread = step * (width / max(1, (len(members) + 1) // 2))
        offsets[members] = spread
    return offsets


def _ranks(values: np.ndarray) -> np.ndarray:
    """Feature values as percentiles in [0, 1] (ties share one), for the colour."""
    if np.ptp(values) == 0:
        return np.full(len(values), np.nan)
    sorted_values = np.sort(values)
    low = np.searchsorted(sorted_values, values, side="left")
    high = np.searchsorted(sorted_values, values, side="right") - 1
    return (low + high) / 2 / (len(values) - 1)


def plot_shap_summary(
    path: Path,
    target: str,
    names: Sequence[str],
    contributions: np.ndarray,
    values: np.ndarray,
    *,
    top: int = 15,
    log: bool,
) -> None:
    """Beeswarm of SHAP values: one row per top feature, one dot per module.

    Features are ordered by mean absolute contribution; a dot's colour is the
    module's value of the feature as a percentile among the plotted modules
    (grey where the feature is constant there).
    """
    mean_abs = np.abs(contributions).mean(axis=0)
    order = [i for i in np.argsort(-mean_abs, kind="stable")[:top] if mean_abs[i] > 0]
    fig = Figure(figsize=(9, 1.4 + 0.36 * max(len(order), 3)), layout="constrained")
    ax = fig.subplots()
    cmap = "coolwarm"
    norm = Normalize(0, 1)
    for row, i in enumerate(order):
        y = len(order) - 1 - row
        x = contributions[:, i]
        colour = _ranks(values[:, i])
        constant = np.isnan(colour)
        offsets = y + _swarm_offsets(x)
        ax.scatter(x[constant], offsets[constant], s=9, color="#999999", linewidths=0)
        ax.scatter(
            x[~constant],
            offsets[~constant],
            s=9,
            c=colour[~constant],
            cmap=cmap,
            norm=norm,
            linewidths=0,
        )
    if order:
        ax.set_yticks(
            np.arange(len(order))[::-1],
            [_short(names[i]) for i in order],
            fontsize=8,
        )
        ax.axvline(0, color="black", linewidth=0.8)
        colourbar = fig.colorbar(
            _mappable(cmap, norm), ax=ax, ticks=[0, 1], fraction=0.04, pad=0.01
        )
        colourbar.ax.set_yticklabels(["low", "high"])
        colourbar.set_label("feature value (percentile)")
    else:
        ax.text(0.5, 0.5, "no contribution: the model is constant", ha="center")
    scale = "log1p(target)" if log else "target"
    ax.set_xlabel(f"SHAP value: contribution to the predicted {scale}")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(
        f"{target}: SHAP values of xgboost on held-out modules (top {len(order)})",
        fontsize=11,
    )
    _save(fig, path)


def _mappable(cmap, norm):
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=cmap)


def plot_coefficients(
    path: Path,
    target: str,
    names: Sequence[str],
    coefficients: np.ndarray,
    *,
    top: int = 15,
    log: bool,
) -> None:
    """The linear model's largest coefficients (per standard deviation), signed."""
    order = [
        i
        for i in np.argsort(-np.abs(coefficients), kind="stable")[:top]
        if coefficients[i] != 0
    ]
    fig = Figure(figsize=(9, 1.2 + 0.32 * max(len(order), 3)), layout="constrained")
    ax = fig.subplots()
    if order:
        values = coefficients[order]
        colours = [_RAISES if v > 0 else _LOWERS for v in values]
        _barh(ax, [names[i] for i in order], values, colours=colours)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.legend(
            handles=[
                Patch(color=_RAISES, label="raises the prediction"),
                Patch(color=_LOWERS, label="lowers it"),
            ],
            loc="best",
            fontsize=8,
        )
    else:
        ax.text(0.5, 0.5, "all coefficients are 0", ha="center")
    scale = "log1p(target)" if log else "target"
    ax.set_xlabel(f"change of predicted {scale} per standard deviation of the feature")
    ax.set_title(
        f"{target}: ridge coefficients (top {len(order)} by magnitude)", fontsize=11
    )
    _save(fig, path)


def plot_overview(
    path: Path, targets: Sequence[str], spearman: Mapping[str, Sequence[float]]
) -> None:
    """Held-out Spearman of every model on every target, as grouped bars."""
    n = len(targets)
    fig = Figure(figsize=(8, 1.2 + 0.3 * max(n, 3)), layout="constrained")
    ax = fig.subplots()
    height = 0.8 / max(len(spearman), 1)
    positions = np.arange(n)[::-1]
    for k, (model, values) in enumerate(spearman.items()):
        ax.barh(
            positions + 0.4 - height * (k + 0.5),
            np.nan_to_num(np.asarray(values, dtype=float)),
            height=height,
            label=model,
            color=_MODEL_COLOURS.get(model, f"C{k}"),
        )
        for position, value in zip(positions, values, strict=True):
            if np.isnan(value):
                ax.text(
                    0.01,
                    position + 0.4 - height * (k + 0.5),
                    f"{model}: n/a",
                    va="center",
                    fontsize=7,
                )
    ax.set_yticks(positions, list(targets), fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    finite = np.array([v for vs in spearman.values() for v in vs], dtype=float)
    finite = finite[np.isfinite(finite)]
    ax.set_xlim(min(0.0, float(finite.min())) if finite.size else 0.0, 1.0)
    ax.set_xlabel("Spearman rank correlation on held-out families")
    ax.grid(True, axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", ncol=len(spearman), fontsize=8)
    ax.set_title("Held-out rank correlation per target", fontsize=11)
    _save(fig, path)
