"""Composed module predictions on the OOD suite, beside the module models.

For each module target, the Spearman rank correlation on the OOD suite of:
``composed`` (the shipped kernels model on the Python partitioner's regions,
aggregated by :data:`~mlircost_classic.models.AGGREGATION`, no calibration, so
no OOD label is used), ``iree-split`` (the same kernels model on IREE's own
dispatches of each module, the records' ``kernels`` lists, called as often as
``kernel_calls`` says: the ceiling of a perfect partitioner), and the module
models' OOD rows of ``benchmarks/results.csv`` (xgboost, ridge, roofline).
With ``--write-defaults``, also writes ``composed-linalg.json`` beside the
shipped models: these figures and, per target, the default (``composed`` where
it ranks the OOD suite better than the shipped modules model, xgboost, else
``modules``; ``load_pretrained("auto")`` and ``mlircost predict`` follow it),
and the folder ``composed-linalg/``: the composed model calibrated on the
bundled linalg modules (per target a line, on the log scale for sums). It
ships without intervals: split-conformal intervals calibrated on those modules
(whose kernels the kernels model was fitted on) are too narrow for new
architectures; their coverage on the OOD suite is measured and recorded in the
JSON. Run from the repository root::

    python benchmarks/composed_ood.py [--write-defaults]
"""

import argparse
import csv
import datetime
import json
import os
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

import mlircost_classic as mc
from mlircost_classic.datasets import iter_dataset
from mlircost_classic.featurize import DispatchRegion
from mlircost_classic.models import (
    COMPOSED_NAME,
    PRETRAINED_DIR,
    ComposedCostModel,
    compose_regions,
    interval_coverage,
    kernel_calls,
)
from mlircost_classic.models._pretrained import _dataset_version

OOD = Path("mlircost_classic/data/ood")
MODELS = ("xgboost", "ridge", "roofline")


def iree_split(names, kernels) -> np.ndarray:
    """Module targets from the kernels model on IREE's own dispatches."""
    texts = {k["id"]: k["ir"]["dispatch"] for k in iter_dataset("kernels", OOD)}
    texts.update({k["id"]: k["ir"]["dispatch"] for k in iter_dataset("kernels")})
    records = [r for r in iter_dataset("modules", OOD) if r["ir"].get("linalg")]
    regions = [
        [
            DispatchRegion(k, "other", texts[k], n, ())
            for k, n in kernel_calls(rec).items()
            if k in texts
        ]
        for rec in records
    ]
    return compose_regions(kernels, regions, names)[0]


def write_calibrated(ood) -> tuple[dict, dict]:
    """Fit the composed model's calibration on the bundled linalg modules, save it.

    The kernels model was fitted on these modules' own kernels, so residuals
    on them are those of familiar programs: the 90% split-conformal intervals
    they give are measured on the OOD suite (returned per target) and not
    shipped. Returns that coverage and the version of the data fitted on (as
    the other shipped models record it).
    """
    names = list(mc.load_pretrained("modules", "linalg").target_names_)
    bundled = mc.load_dataset("modules", level="linalg", targets=names)
    shipped = ComposedCostModel(random_state=0)
    shipped.fit(bundled.data, bundled.target, list(bundled.target_names))
    shipped.save(PRETRAINED_DIR / COMPOSED_NAME, overwrite=True)
    model = ComposedCostModel(intervals="conformal", random_state=0)
    model.fit(bundled.data, bundled.target, list(bundled.target_names))
    lower, upper = model.predict_interval(ood.data)
    coverage = {}
    for j, target in enumerate(model.target_names_):
        if target not in ood.target_names:
            continue
        y = ood.target[:, list(ood.target_names).index(target)]
        value = interval_coverage(y, lower[:, j], upper[:, j])
        coverage[target] = None if np.isnan(value) else round(float(value), 3)
        print(f"composed 90% interval coverage, OOD: {target} {value:.3f}")
    return coverage, {**_dataset_version(None), "records": len(bundled.data)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-defaults", action="store_true")
    args = parser.parse_args()
    ood = mc.load_dataset("modules", suite="ood")
    names = list(ood.target_names)
    model = ComposedCostModel(calibrate=False).fit(ood.data, ood.target, names)
    predictions = {
        "composed": model.predict(ood.data),
        "iree-split": iree_split(names, model.kernel_model_),
    }
    shipped = {}
    with open("benchmarks/results.csv") as f:
        for row in csv.DictReader(f):
            if (row["kind"], row["protocol"], row["metric"]) == (
                "modules",
                "ood",
                "spearman",
            ):
                shipped[(row["model"], row["target"])] = float(row["value"])
    header = ["target", *predictions, *MODELS]
    print(" | ".join(header))
    figures, defaults = {}, {}
    for j, target in enumerate(names):
        y = ood.target[:, j]
        row = {}
        for name, p in predictions.items():
            ok = ~np.isnan(y) & ~np.isnan(p[:, j])
            if ok.sum() >= 3 and np.ptp(y[ok]) > 0 and np.ptp(p[ok, j]) > 0:
                row[name] = float(spearmanr(y[ok], p[ok, j])[0])
        row.update({m: shipped[(m, target)] for m in MODELS if (m, target) in shipped})
        figures[target] = row
        wins = "xgboost" in row and row.get("composed", -np.inf) > row["xgboost"]
        defaults[target] = "composed" if wins else "modules"
        cells = [f"{row[m]:.3f}" if m in row else "-" for m in header[1:]]
        print(" | ".join([target, *cells]))
    if args.write_defaults:
        coverage, dataset = write_calibrated(ood)
        now = datetime.datetime.now(datetime.timezone.utc)
        record = {
            "name": "composed-linalg",
            "kind": "composed",
            "date": now.isoformat(timespec="seconds"),
            "command": "python benchmarks/composed_ood.py --write-defaults",
            "host_cpus": os.cpu_count(),
            "metric": "Spearman on the OOD suite (28 modules); xgboost / ridge / "
            "roofline from benchmarks/results.csv",
            "ood_spearman": figures,
            "default": defaults,
            "calibrated": {
                "folder": f"{COMPOSED_NAME}/",
                "fitted_on": "bundled linalg modules, ComposedCostModel(random_state=0)",
                "dataset": dataset,
                "ood_coverage_90_if_calibrated_on_bundled": coverage,
            },
        }
        out = PRETRAINED_DIR / f"{COMPOSED_NAME}.json"
        out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
