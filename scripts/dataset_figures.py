"""Draw the datasheet's figures: the distribution of every target in a dataset.

Usage: python scripts/dataset_figures.py [DATA_HOME] [OUT_DIR]

DATA_HOME is a dataset folder (default: the bundled one) or a collection run
folder; the PNGs go to OUT_DIR (default: docs/dataset).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mlircost_classic.datasets import load_dataset  # noqa: E402


def plot_targets(kind: str, data_home, out: Path) -> Path:
    ds = load_dataset(kind, data_home=data_home)
    names = list(ds.target_names)
    cols = 4
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for ax, name, column in zip(axes.flat, names, ds.target.T, strict=False):
        values = column[~np.isnan(column)]
        positive = values[values > 0]
        use_log = (
            positive.size == values.size
            and values.size
            and values.max() > 100 * values.min()
        )
        data = np.log10(values) if use_log else values
        ax.hist(data, bins=30, color="#4477aa")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(("log10 " if use_log else "") + name.split(".", 1)[1], fontsize=8)
        ax.tick_params(labelsize=7)
        ax.text(
            0.98,
            0.95,
            f"n={values.size}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=7,
        )
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(f"{kind}: {len(ds.data)} records, target distributions", fontsize=11)
    fig.tight_layout()
    path = out / f"{kind}_targets.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: list[str]) -> None:
    data_home = argv[1] if len(argv) > 1 and argv[1] else None
    out = Path(argv[2] if len(argv) > 2 else "docs/dataset")
    out.mkdir(parents=True, exist_ok=True)
    for kind in ("modules", "kernels"):
        print(plot_targets(kind, data_home, out))


if __name__ == "__main__":
    main(sys.argv)
