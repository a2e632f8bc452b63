"""Coverage of the 90% conformal intervals: random-split vs group calibration.

For each kind (modules at the linalg level, kernels), on a sample of the
bundled records (at most ``--per-family`` per family) and a few targets:

- **by family**: GroupKFold over the families (5 folds); in each fold a
  ``CostModel(intervals="conformal")`` is fitted on the training families,
  calibrated on a random split (``fit(X, y)``, the shipped behaviour) or on
  held-out families (``fit(X, y, groups=...)``), and its intervals are scored
  on the test families;
- **out of distribution**: both fitted on the whole sample, scored on the OOD
  suite (``load_dataset(kind, suite="ood")``), with the share of OOD records
  that :meth:`CostModel.novelty` flags and the coverage on flagged and
  unflagged records.

Coverage is reported by the records' ``source`` where the dataset has that
field (else all records are ``families``), with the median interval width as
the ratio upper / lower (log targets) or upper - lower. Run from the
repository root (a few minutes on two cores)::

    python benchmarks/intervals.py --n-estimators 60 --per-family 60
"""

import argparse
import os
import time

import numpy as np
from sklearn.model_selection import GroupKFold

import mlircost_classic as mc
from mlircost_classic.mlir import parse
from mlircost_classic.models import CostModel, default_estimator, interval_coverage

TARGETS = (
    "cpu_x86_64_v3.instructions",
    "cpu_x86_64_v3.code_bytes",
    "nvidia_sm80.registers",
    "amd_gfx942.vgprs",
)


def _sample(groups, per_family, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for family in np.unique(groups):
        members = np.flatnonzero(groups == family)
        rows.extend(rng.choice(members, min(per_family, members.size), replace=False))
    return np.sort(np.asarray(rows))


def _sources(bunch, n):
    source = getattr(bunch, "sources", None)
    if source is None:
        source = getattr(bunch, "source", None)
    return np.asarray(source if source is not None else ["families"] * n, object)


def _model(n_estimators):
    return CostModel(
        estimator=default_estimator().set_params(n_estimators=n_estimators),
        intervals="conformal",
        random_state=0,
    )


def _width(lower, upper):
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = upper / lower
    finite = ratio[np.isfinite(ratio)]
    return float(np.median(finite)) if finite.size else float("nan")


def _report(label, Y, lower, upper, names, sources, mask=None):
    for j, name in enumerate(names):
        for source in np.unique(sources):
            rows = sources == source if mask is None else (sources == source) & mask
            if not rows.any():
                continue
            y = Y[rows, j]
            cov = interval_coverage(y, lower[rows, j], upper[rows, j])
            n = int((~np.isnan(y)).sum())
            width = _width(lower[rows, j], upper[rows, j])
            print(
                f"  {label:<34} {name:<28} {source:<12} n={n:<5} "
                f"coverage {cov:.3f}  median upper/lower {width:.2f}"
            )


def run(kind, per_family, n_estimators, n_splits):
    level = "linalg" if kind == "modules" else None
    bunch = mc.load_dataset(kind, level=level, targets=list(TARGETS))
    groups = np.asarray(bunch.groups)
    keep = _sample(groups, per_family)
    docs = [parse(bunch.data[i]) for i in keep]
    Y, names = bunch.target[keep], list(bunch.target_names)
    groups, sources = groups[keep], _sources(bunch, len(bunch.data))[keep]
    print(f"{kind}: {len(docs)} records, {len(np.unique(groups))} families, {names}")
    start = time.perf_counter()
    bounds = {c: (np.full(Y.shape, np.nan), np.full(Y.shape, np.nan)) for c in "RG"}
    folds = GroupKFold(n_splits=n_splits).split(docs, groups=groups)
    for train, test in folds:
        X_train, X_test = [docs[i] for i in train], [docs[i] for i in test]
        for calibration, fit_groups in (("R", None), ("G", groups[train])):
            model = _model(n_estimators).fit(X_train, Y[train], names, fit_groups)
            lower, upper = model.predict_interval(X_test)
            bounds[calibration][0][test] = lower
            bounds[calibration][1][test] = upper
    print(f"  by family, {n_splits} folds ({time.perf_counter() - start:.0f} s):")
    _report("random-split calibration", Y, *bounds["R"], names, sources)
    _report("group calibration", Y, *bounds["G"], names, sources)

    ood = mc.load_dataset(kind, level=level, targets=list(TARGETS), suite="ood")
    ood_docs = [parse(t) for t in ood.data]
    Y_ood = ood.target[:, [list(ood.target_names).index(t) for t in names]]
    ood_sources = np.asarray(["ood"] * len(ood_docs), object)
    start = time.perf_counter()
    print(f"  out of distribution: {len(ood_docs)} OOD records")
    for label, fit_groups in (("random-split", None), ("group", groups)):
        model = _model(n_estimators).fit(docs, Y, names, fit_groups)
        lower, upper = model.predict_interval(ood_docs)
        _report(f"{label} calibration", Y_ood, lower, upper, names, ood_sources)
        flagged = np.array([bool(r) for r in model.novelty(ood_docs)])
        for mask, what in ((flagged, "flagged"), (~flagged, "not flagged")):
            _report(
                f"{label}, novelty {what}",
                Y_ood,
                lower,
                upper,
                names,
                ood_sources,
                mask,
            )
    reasons = model.novelty(ood_docs)
    kinds = {}
    for why in reasons:
        for reason in why:
            key = reason.split(" = ")[0].split(":")[0]
            kinds[key] = kinds.get(key, 0) + 1
    print(
        f"  novelty flags {int(flagged.sum())}/{len(flagged)} OOD records; "
        f"reasons {kinds}; in-sample flags "
        f"{sum(bool(r) for r in model.novelty(docs))}/{len(docs)} "
        f"({time.perf_counter() - start:.0f} s)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=["modules", "kernels"])
    parser.add_argument("--per-family", type=int, default=60)
    parser.add_argument("--n-estimators", type=int, default=60)
    parser.add_argument("--n-splits", type=int, default=5)
    args = parser.parse_args()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        "?",
    )
    print(f"host: {cpu}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    for kind in args.kinds:
        run(kind, args.per_family, args.n_estimators, args.n_splits)


if __name__ == "__main__":
    main()
